package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/stretchr/testify/require"
)

func TestRenderFeishuGolden(t *testing.T) {
	for _, tt := range renderCases {
		t.Run(tt.name, func(t *testing.T) {
			b, err := renderFeishu(tt.env)
			require.NoError(t, err)
			got, err := encodeJSON(b)
			require.NoError(t, err)
			require.NotContains(t, string(got), `\u003c`, "HTML must not be escaped")
			golden(t, "feishu_"+tt.name+".json", got)
		})
	}
}

func TestRenderWeComGolden(t *testing.T) {
	for _, tt := range renderCases {
		t.Run(tt.name, func(t *testing.T) {
			b, err := renderWeCom(tt.env)
			require.NoError(t, err)
			got, err := encodeJSON(b)
			require.NoError(t, err)
			golden(t, "wecom_"+tt.name+".json", got)
		})
	}
}

// TestRenderFeishuSigned checks the body fields of a signed Feishu
// request against a signature computed here with crypto/hmac (and the
// vector in pkg/signer, computed with OpenSSL): timestamp in seconds,
// key "<ts>\n<secret>", empty message.
func TestRenderFeishuSigned(t *testing.T) {
	robot := Robot{Name: "f", Platform: PlatformFeishu, Webhook: "https://open.feishu.cn/open-apis/bot/v2/hook/tok", Secret: "SECtest"}
	out, err := feishuPlatform.render(renderCases[0].env, robot, testNow)
	require.NoError(t, err)
	b := out.body.(*feishuBody)
	require.Equal(t, "1740830400", b.Timestamp, "seconds, not milliseconds")
	m := hmac.New(sha256.New, []byte("1740830400\nSECtest"))
	require.Equal(t, base64.StdEncoding.EncodeToString(m.Sum(nil)), b.Sign)
	require.Equal(t, robot.Webhook, out.url, "the signature goes in the body, not the URL")

	robot.Secret = ""
	out, err = feishuPlatform.render(renderCases[0].env, robot, testNow)
	require.NoError(t, err)
	raw, err := encodeJSON(out.body)
	require.NoError(t, err)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(raw, &fields))
	require.ElementsMatch(t, []string{"msg_type", "content"}, keys(fields))
}

func TestRenderWeComLimits(t *testing.T) {
	tests := []struct {
		name    string
		msg     envelope.Message
		at      *envelope.At
		wantErr error
		msgType string
	}{
		{"text at 2048 bytes", envelope.Message{Text: &envelope.Text{Content: strings.Repeat("a", 2048)}}, nil, nil, "text"},
		{"text over 2048 bytes", envelope.Message{Text: &envelope.Text{Content: strings.Repeat("a", 2049)}}, nil, ErrTooLong, ""},
		{"markdown at 4096 bytes", envelope.Message{Markdown: &envelope.Markdown{Title: "T", Text: strings.Repeat("b", 4090)}}, nil, nil, "markdown"},
		{"markdown over 4096 bytes", envelope.Message{Markdown: &envelope.Markdown{Title: "T", Text: strings.Repeat("b", 4091)}}, nil, ErrTooLong, ""},
		{"feed card of 9 links", envelope.Message{FeedCard: &envelope.FeedCard{Links: make([]envelope.FeedLink, 9)}}, nil, ErrInvalidMessage, ""},
		{"action card too long for a template card", envelope.Message{ActionCard: &envelope.ActionCard{Title: "T", Text: strings.Repeat("x", 113),
			SingleTitle: "Open", SingleURL: "https://example.com"}}, nil, nil, "markdown"},
		{"action card with four buttons", envelope.Message{ActionCard: &envelope.ActionCard{Title: "T", Text: "x",
			Buttons: []envelope.Button{{Title: "1", ActionURL: "https://e.com/1"}, {Title: "2", ActionURL: "https://e.com/2"}, {Title: "3", ActionURL: "https://e.com/3"}, {Title: "4", ActionURL: "https://e.com/4"}}}}, nil, nil, "markdown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := renderWeCom(&envelope.Envelope{ID: "x", Message: tt.msg, At: tt.at})
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.msgType, b.MsgType)
		})
	}
}

// TestWeComSizeRulesMatchRenderer: a markdown message the envelope's
// WeCom rules accept renders within 4096 bytes, mentions included.
func TestWeComSizeRulesMatchRenderer(t *testing.T) {
	at := &envelope.At{UserIDs: []string{"zhangsan", "lisi"}, Mobiles: []string{"13800000001"}, All: true}
	md := &envelope.Markdown{Title: "Report"}
	md.Text = strings.Repeat("c", weComPlatform.Size.Markdown-envelope.MarkdownSize(md, at))
	env := &envelope.Envelope{V: 1, ID: "x", Robot: "w", Message: envelope.Message{Markdown: md}, At: at, CreatedAt: testNow}
	require.NoError(t, env.ValidateFor(weComPlatform.Size))
	b, err := renderWeCom(env)
	require.NoError(t, err)
	require.LessOrEqual(t, len(b.Markdown.Content), WeComMaxMarkdown)

	md.Text += "c"
	require.ErrorIs(t, env.ValidateFor(weComPlatform.Size), envelope.ErrTooLarge)
}

func TestClassifyFeishu(t *testing.T) {
	d := newTestDeliverer(t)
	runClassify(t, d, PlatformFeishu, []classifyCase{
		{name: "ok", body: `{"code":0,"data":{},"msg":"success"}`, want: Success},
		{name: "legacy ok", body: `{"Extra":null,"StatusCode":0,"StatusMessage":"success"}`, want: Success},
		{name: "11232 frequency limited, HTTP 200", body: `{"code":11232,"data":{},"msg":"frequency limited psm[lark.oapi.app_platform_runtime]appID[1500]"}`,
			want: Throttled, code: 11232, reason: "frequency limited"},
		{name: "9499 too many request, HTTP 400", status: 400, body: `{"code":9499,"msg":"too many request","data":{}}`,
			want: Throttled, code: 9499, reason: "too many requests", errIs: ErrHTTPStatus},
		{name: "9499 bad request, HTTP 400", status: 400, body: `{"code":9499,"msg":"Bad Request","data":{}}`,
			want: Permanent, code: 9499, reason: "bad request"},
		{name: "19021 sign", body: `{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}`,
			want: Permanent, code: 19021, reason: "sign not match or timestamp not within one hour (check the clock)"},
		{name: "19022 ip", body: `{"code":19022,"msg":"Ip Not Allowed"}`, want: Permanent, code: 19022, reason: "ip not allowed"},
		{name: "19024 keywords", body: `{"code":19024,"msg":"Key Words Not Found"}`, want: Permanent, code: 19024, reason: "keywords not in content"},
		{name: "19001 token", body: `{"code":19001,"msg":"param invalid: incoming webhook access token invalid"}`, want: Permanent, code: 19001, reason: "token invalid"},
		{name: "19002 msg_type", body: `{"code":19002,"msg":"params error, msg_type need"}`, want: Permanent, code: 19002, reason: "unsupported msg_type"},
		{name: "legacy error", body: `{"StatusCode":19024,"StatusMessage":"Key Words Not Found"}`, want: Permanent, code: 19024},
		{name: "unknown code", body: `{"code":12345,"msg":"new"}`, want: Permanent, code: 12345, reason: "unknown errcode 12345"},
		{name: "DingTalk fields are not Feishu's", body: `{"errcode":0,"errmsg":"ok"}`, want: Retryable, errIs: ErrBadResponse},
		{name: "503", status: 503, body: `oops`, want: Retryable},
	})
}

func TestClassifyWeCom(t *testing.T) {
	d := newTestDeliverer(t)
	runClassify(t, d, PlatformWeCom, []classifyCase{
		{name: "ok", body: `{"errcode":0,"errmsg":"ok"}`, want: Success},
		{name: "45009 throttled", body: `{"errcode":45009,"errmsg":"api freq out of limit"}`, want: Throttled, code: 45009, reason: "api freq out of limit"},
		{name: "93000 invalid url", body: `{"errcode":93000,"errmsg":"invalid webhook url, hint: [1700000000_1_abc]"}`, want: Permanent, code: 93000,
			reason: "invalid webhook url (a key is expected, not a URL)"},
		{name: "40058 too long", body: `{"errcode":40058,"errmsg":"markdown.content exceed max length 4096"}`, want: Permanent, code: 40058, reason: "message too long"},
		{name: "-1 busy", body: `{"errcode":-1,"errmsg":"system busy"}`, want: Retryable, code: -1, reason: "system busy"},
		{name: "unknown code", body: `{"errcode":40008,"errmsg":"invalid message type"}`, want: Permanent, code: 40008, reason: "unknown errcode 40008"},
		{name: "429", status: http.StatusTooManyRequests, want: Wait, retryAfter: DefaultWait},
	})
}

func TestPlatformCredential(t *testing.T) {
	tests := []struct {
		platform, webhook, want string
	}{
		{PlatformDingTalk, "https://oapi.dingtalk.com/robot/send?access_token=abc123", "abc123"},
		{PlatformPOPO, "https://open.popo.netease.com/open-apis/robots/v1/hook/h0ok1d", "h0ok1d"},
		{PlatformFeishu, "https://open.feishu.cn/open-apis/bot/v2/hook/2c9a-77b1", "2c9a-77b1"},
		{PlatformFeishu, "https://open.larksuite.com/open-apis/bot/v2/hook/lark-tok", "lark-tok"},
		{PlatformWeCom, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx", "693a91f6-7xxx"},
		{PlatformWeCom, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send", ""},
	}
	for _, tt := range tests {
		t.Run(tt.platform+"/"+tt.want, func(t *testing.T) {
			p, ok := LookupPlatform(tt.platform)
			require.True(t, ok)
			require.Equal(t, tt.want, p.Credential(tt.webhook))
		})
	}
}

// TestResultsNeverHoldTheWeComKey: the key is scrubbed even when it is
// shorter than the query values the generic scrubber takes for secrets.
func TestResultsNeverHoldTheWeComKey(t *testing.T) {
	robot := Robot{Name: "w", Platform: PlatformWeCom, Webhook: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k3y"}
	sc := newScrubber(robot)
	res := sc.result(Result{ErrMsg: "invalid webhook url k3y", Reason: "k3y"})
	require.NotContains(t, res.ErrMsg+res.Reason, "k3y")
}

func TestPlatformsListedOnce(t *testing.T) {
	names := PlatformNames()
	require.Equal(t, []string{PlatformDingTalk, PlatformPOPO, PlatformFeishu, PlatformWeCom}, names)
	for _, p := range Platforms() {
		require.NotEmpty(t, p.Limits, p.Name)
		require.Positive(t, p.CoolOff, p.Name)
		require.NotNil(t, p.render, p.Name)
		require.NotNil(t, p.keywordText, p.Name)
		require.NotEmpty(t, DefaultRules(p.Name), p.Name)
		for i := 1; i < len(p.Limits); i++ {
			require.GreaterOrEqual(t, p.Limits[0].Window, p.Limits[i].Window, "%s: the first window is the longest", p.Name)
		}
	}
	// Copies: changing one does not change the list.
	p, _ := LookupPlatform(PlatformFeishu)
	p.Limits[0].Max = 1
	q, _ := LookupPlatform(PlatformFeishu)
	require.Equal(t, 100, q.Limits[0].Max)
}
