package robotsim_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/signer"
	"github.com/stretchr/testify/require"
)

const (
	dtToken  = "dt-token-0123456789"
	dtSecret = "SECdt-secret"
)

func TestDingTalkAcceptsEveryMsgType(t *testing.T) {
	tests := []struct {
		name  string
		body  map[string]any
		want  robotsim.Received
		setup func(*testing.T)
	}{
		{
			name: "text with mentions",
			body: map[string]any{
				"msgtype": "text", "text": map[string]any{"content": "alert: disk @138"},
				"at": map[string]any{"atMobiles": []string{"138"}, "atUserIds": []string{"u1"}, "isAtAll": true},
			},
			want: robotsim.Received{MsgType: "text", Content: "alert: disk @138",
				AtMobiles: []string{"138"}, AtUserIDs: []string{"u1"}, AtAll: true},
		},
		{
			name: "markdown, keyword in title",
			body: map[string]any{"msgtype": "markdown", "markdown": map[string]any{"title": "alert", "text": "# disk"}},
			want: robotsim.Received{MsgType: "markdown", Title: "alert", Content: "# disk"},
		},
		{
			name: "link",
			body: map[string]any{"msgtype": "link", "link": map[string]any{
				"title": "t", "text": "alert text", "messageUrl": "https://example.com", "picUrl": ""}},
			want: robotsim.Received{MsgType: "link", Title: "t", Content: "alert text"},
		},
		{
			name: "actionCard single button",
			body: map[string]any{"msgtype": "actionCard", "actionCard": map[string]any{
				"title": "alert", "text": "x", "singleTitle": "open", "singleURL": "https://example.com"}},
			want: robotsim.Received{MsgType: "actionCard", Title: "alert", Content: "x"},
		},
		{
			name: "actionCard buttons",
			body: map[string]any{"msgtype": "actionCard", "actionCard": map[string]any{
				"title": "t", "text": "alert", "btns": []map[string]any{{"title": "a", "actionURL": "https://a"}}}},
			want: robotsim.Received{MsgType: "actionCard", Title: "t", Content: "alert"},
		},
		{
			name: "feedCard",
			body: map[string]any{"msgtype": "feedCard", "feedCard": map[string]any{"links": []map[string]any{
				{"title": "one", "messageURL": "https://1"}, {"title": "alert two", "messageURL": "https://2"}}}},
			want: robotsim.Received{MsgType: "feedCard", Content: "one\nalert two"},
		},
		{
			name: "msgUuid kept",
			body: map[string]any{"msgtype": "text", "text": map[string]any{"content": "alert"}, "msgUuid": "env-1"},
			want: robotsim.Received{MsgType: "text", Content: "alert", MsgUUID: "env-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			srv := newServer(t, robotsim.Config{Now: clock.Now}, robotsim.Robot{
				Platform: robotsim.PlatformDingTalk, Token: dtToken, Secret: dtSecret, Keywords: []string{"alert"},
			})
			a := sendDingTalk(t, srv, dtToken, dtSecret, tt.body)
			require.Equal(t, answer{ErrCode: 0, ErrMsg: "ok"}, a)

			got := srv.Received(dtToken)
			require.Len(t, got, 1)
			require.Equal(t, clock.Now(), got[0].At)
			require.JSONEq(t, string(mustJSON(t, tt.body)), string(got[0].Body))
			got[0].At, got[0].Body = time.Time{}, nil
			require.Equal(t, tt.want, got[0])
			require.Equal(t, robotsim.Stats{Requests: 1, Accepted: 1}, srv.Stats(dtToken))
		})
	}
}

func TestDingTalkWithoutSecretAcceptsUnsigned(t *testing.T) {
	srv := newServer(t, robotsim.Config{}, robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: dtToken})
	require.Equal(t, 0, sendDingTalk(t, srv, dtToken, "", textBody("hello")).ErrCode)
	require.Len(t, srv.Received(dtToken), 1)
}

func TestDingTalkErrors(t *testing.T) {
	text := func(s string) []byte {
		return []byte(`{"msgtype":"text","text":{"content":"` + s + `"}}`)
	}
	signed := func(ts time.Time, secret string) func(string) string {
		return func(u string) string {
			s, err := signer.SignDingTalkURL(u, secret, ts)
			if err != nil {
				panic(err)
			}
			return s
		}
	}
	withQuery := func(kv ...string) func(string) string {
		return func(u string) string {
			for i := 0; i < len(kv); i += 2 {
				u += "&" + kv[i] + "=" + url.QueryEscape(kv[i+1])
			}
			return u
		}
	}
	good := signed(time.Now(), dtSecret)
	tests := []struct {
		name        string
		token       string
		method      string
		contentType string
		url         func(string) string
		body        []byte
		wantCode    int
		wantMsg     string
		wantStats   robotsim.Stats
	}{
		{name: "unknown token", token: "nope", url: good, body: text("alert"),
			wantCode: robotsim.DingTalkErrTokenNotExist, wantMsg: "token is not exist"},
		{name: "GET", method: http.MethodGet, url: good,
			wantCode: robotsim.DingTalkErrMustPost, wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
		{name: "form content type", contentType: "application/x-www-form-urlencoded", url: good, body: text("alert"),
			wantCode: robotsim.DingTalkErrContentType, wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
		{name: "missing timestamp and sign", url: func(u string) string { return u }, body: text("alert"),
			wantCode: robotsim.DingTalkErrSecurity, wantMsg: robotsim.DingTalkMsgInvalidTimestamp,
			wantStats: robotsim.Stats{Requests: 1, Rejected: 1, SignatureFailures: 1}},
		{name: "malformed timestamp", url: withQuery("timestamp", "yesterday", "sign", "x"), body: text("alert"),
			wantCode: robotsim.DingTalkErrSecurity, wantMsg: robotsim.DingTalkMsgInvalidTimestamp,
			wantStats: robotsim.Stats{Requests: 1, Rejected: 1, SignatureFailures: 1}},
		{name: "timestamp older than one hour", url: signed(time.Now().Add(-61*time.Minute), dtSecret), body: text("alert"),
			wantCode: robotsim.DingTalkErrSecurity, wantMsg: robotsim.DingTalkMsgInvalidTimestamp,
			wantStats: robotsim.Stats{Requests: 1, Rejected: 1, SignatureFailures: 1}},
		{name: "timestamp without sign", url: withQuery("timestamp", signer.Timestamp(time.Now())), body: text("alert"),
			wantCode: robotsim.DingTalkErrSecurity, wantMsg: robotsim.DingTalkMsgSignNotMatch,
			wantStats: robotsim.Stats{Requests: 1, Rejected: 1, SignatureFailures: 1}},
		{name: "wrong secret", url: signed(time.Now(), "SECother"), body: text("alert"),
			wantCode: robotsim.DingTalkErrSecurity, wantMsg: robotsim.DingTalkMsgSignNotMatch,
			wantStats: robotsim.Stats{Requests: 1, Rejected: 1, SignatureFailures: 1}},
		{name: "invalid JSON", url: good, body: []byte(`{"msgtype":`),
			wantCode: robotsim.DingTalkErrMissingParam, wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
		{name: "unsupported msgtype", url: good, body: []byte(`{"msgtype":"image","image":{}}`),
			wantCode: robotsim.DingTalkErrUnsupportedType, wantMsg: "unsupported msgtype",
			wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
		{name: "text without content", url: good, body: []byte(`{"msgtype":"text","text":{}}`),
			wantCode: robotsim.DingTalkErrMissingParam, wantMsg: "text.content", wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
		{name: "markdown without title", url: good, body: []byte(`{"msgtype":"markdown","markdown":{"text":"alert"}}`),
			wantCode: robotsim.DingTalkErrMissingParam, wantMsg: "markdown", wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
		{name: "link without messageUrl", url: good, body: []byte(`{"msgtype":"link","link":{"title":"alert","text":"x"}}`),
			wantCode: robotsim.DingTalkErrMissingParam, wantMsg: "link", wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
		{name: "actionCard without buttons", url: good, body: []byte(`{"msgtype":"actionCard","actionCard":{"title":"alert","text":"x"}}`),
			wantCode: robotsim.DingTalkErrMissingParam, wantMsg: "actionCard", wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
		{name: "feedCard without links", url: good, body: []byte(`{"msgtype":"feedCard","feedCard":{"links":[]}}`),
			wantCode: robotsim.DingTalkErrMissingParam, wantMsg: "feedCard", wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
		{name: "body over 20000 bytes", url: good, body: text("alert " + strings.Repeat("x", robotsim.DingTalkMaxBody)),
			wantCode: robotsim.DingTalkErrTooLong, wantMsg: "message too long, exceed 20000 bytes",
			wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
		{name: "body over the read limit", url: good, body: text("alert " + strings.Repeat("x", 2<<20)),
			wantCode: robotsim.DingTalkErrTooLong, wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
		{name: "keywords not in content", url: good, body: text("hello"),
			wantCode: robotsim.DingTalkErrSecurity, wantMsg: robotsim.DingTalkMsgKeywords,
			wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
		{name: "keyword is case sensitive", url: good, body: text("ALERT"),
			wantCode: robotsim.DingTalkErrSecurity, wantMsg: robotsim.DingTalkMsgKeywords,
			wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, robotsim.Config{}, robotsim.Robot{
				Platform: robotsim.PlatformDingTalk, Token: dtToken, Secret: dtSecret, Keywords: []string{"alert", "warn"},
			})
			token := dtToken
			if tt.token != "" {
				token = tt.token
			}
			method := http.MethodPost
			if tt.method != "" {
				method = tt.method
			}
			ct := "application/json; charset=utf-8"
			if tt.contentType != "" {
				ct = tt.contentType
			}
			u := tt.url(robotsim.WebhookURL(srv.URL, robotsim.PlatformDingTalk, token))
			a := do(t, method, u, ct, tt.body)
			require.Equal(t, tt.wantCode, a.ErrCode, a.ErrMsg)
			require.Contains(t, a.ErrMsg, tt.wantMsg)
			require.Equal(t, tt.wantStats, srv.Stats(dtToken))
			require.Empty(t, srv.Received(dtToken))
			require.NotContains(t, a.ErrMsg, dtSecret)
		})
	}
}

func TestDingTalkDuplicateMsgUUID(t *testing.T) {
	srv := newServer(t, robotsim.Config{}, robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: dtToken})
	body := func(uuid, content string) map[string]any {
		b := textBody(content)
		b["msgUuid"] = uuid
		return b
	}
	for _, b := range []map[string]any{body("a", "first"), body("a", "retry of first"), body("b", "second"), body("a", "again")} {
		require.Equal(t, answer{ErrCode: 0, ErrMsg: "ok"}, sendDingTalk(t, srv, dtToken, "", b))
	}
	got := srv.Received(dtToken)
	require.Len(t, got, 2)
	require.Equal(t, "first", got[0].Content)
	require.Equal(t, "second", got[1].Content)
	require.Equal(t, robotsim.Stats{Requests: 4, Accepted: 2, Duplicates: 2}, srv.Stats(dtToken))
}

func TestDingTalkTokenOfPOPORobotIsUnknown(t *testing.T) {
	srv := newServer(t, robotsim.Config{}, robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "shared"})
	a := sendDingTalk(t, srv, "shared", "", textBody("x"))
	require.Equal(t, robotsim.DingTalkErrTokenNotExist, a.ErrCode)
}
