package robotsim_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/stretchr/testify/require"
)

type feishuAnswer struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
}

// feishuSign signs the way Feishu documents it, with this test's own
// code: key "<seconds>\n<secret>", empty message.
func feishuSign(secret string, at time.Time) (string, string) {
	ts := strconv.FormatInt(at.Unix(), 10)
	m := hmac.New(sha256.New, []byte(ts+"\n"+secret))
	return ts, base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func postFeishu(t *testing.T, srv *robotsim.Server, token string, body map[string]any) (int, feishuAnswer) {
	t.Helper()
	resp, err := http.Post(robotsim.WebhookURL(srv.URL, robotsim.PlatformFeishu, token), "application/json", bytes.NewReader(mustJSON(t, body)))
	require.NoError(t, err)
	defer resp.Body.Close()
	var a feishuAnswer
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	return resp.StatusCode, a
}

func feishuText(secret, text string) map[string]any {
	b := map[string]any{"msg_type": "text", "content": map[string]any{"text": text}}
	if secret != "" {
		b["timestamp"], b["sign"] = feishuSign(secret, time.Now())
	}
	return b
}

func TestFeishuAnswers(t *testing.T) {
	const secret = "SECfeishu"
	clk := newFakeClock()
	srv := newServer(t, robotsim.Config{Now: clk.Now, Window: time.Minute},
		robotsim.Robot{Platform: robotsim.PlatformFeishu, Token: "fs-signed", Secret: secret, Keywords: []string{"alert"}})

	dingStyle := feishuText("", "alert: x")
	ms := strconv.FormatInt(time.Now().UnixMilli(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ms + "\n" + secret))
	dingStyle["timestamp"], dingStyle["sign"] = ms, base64.StdEncoding.EncodeToString(m.Sum(nil))

	tests := []struct {
		name   string
		token  string
		body   map[string]any
		status int
		code   int
	}{
		{"signed text with keyword", "fs-signed", feishuText(secret, "alert: disk full"), 200, robotsim.FeishuOK},
		{"signed card with keyword in the title", "fs-signed", map[string]any{"msg_type": "interactive",
			"timestamp": func() string { ts, _ := feishuSign(secret, time.Now()); return ts }(),
			"sign":      func() string { _, s := feishuSign(secret, time.Now()); return s }(),
			"card": map[string]any{"header": map[string]any{"title": map[string]any{"content": "alert"}},
				"elements": []any{map[string]any{"tag": "markdown", "content": "**db** down <at id=ou_1></at>"}}}}, 200, robotsim.FeishuOK},
		{"signed the DingTalk way", "fs-signed", dingStyle, 200, robotsim.FeishuErrSign},
		{"unsigned", "fs-signed", feishuText("", "alert"), 200, robotsim.FeishuErrSign},
		{"no keyword", "fs-signed", feishuText(secret, "hello"), 200, robotsim.FeishuErrKeywords},
		{"unknown msg_type", "fs-signed", map[string]any{"msg_type": "share_chat",
			"timestamp": func() string { ts, _ := feishuSign(secret, time.Now()); return ts }(),
			"sign":      func() string { _, s := feishuSign(secret, time.Now()); return s }()}, 200, robotsim.FeishuErrMsgType},
		{"unknown token", "nope", feishuText("", "alert"), 400, robotsim.FeishuErrToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.Advance(time.Second) // keep clear of the per-second window
			status, a := postFeishu(t, srv, tt.token, tt.body)
			require.Equal(t, tt.status, status)
			require.Equal(t, tt.code, a.Code, a.Msg)
		})
	}
	rec := srv.Received("fs-signed")
	require.Len(t, rec, 2)
	require.Equal(t, "alert", rec[1].Title)
	require.Equal(t, []string{"ou_1"}, rec[1].AtUserIDs)
}

func TestFeishuBothWindows(t *testing.T) {
	clk := newFakeClock()
	srv := newServer(t, robotsim.Config{Now: clk.Now, Window: time.Minute},
		robotsim.Robot{Platform: robotsim.PlatformFeishu, Token: "fs"})
	for i := range 5 {
		_, a := postFeishu(t, srv, "fs", feishuText("", "m"))
		require.Equal(t, 0, a.Code, "message %d of the second", i+1)
	}
	status, a := postFeishu(t, srv, "fs", feishuText("", "m"))
	require.Equal(t, http.StatusBadRequest, status, "the 6th in one second")
	require.Equal(t, robotsim.FeishuErrBadRequest, a.Code)
	require.Equal(t, robotsim.FeishuMsgTooMany, a.Msg)

	// 95 more, 5 per second: 100 in the minute; the 101st is 11232.
	for i := range 95 {
		if i%5 == 0 {
			clk.Advance(time.Second)
		}
		_, a := postFeishu(t, srv, "fs", feishuText("", "m"))
		require.Equal(t, 0, a.Code, "message %d of the minute", 6+i)
	}
	clk.Advance(time.Second)
	status, a = postFeishu(t, srv, "fs", feishuText("", "m"))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, robotsim.FeishuErrFrequency, a.Code)
	require.Equal(t, 2, srv.Stats("fs").Breaches)

	clk.Advance(time.Minute) // no ban: the window rolled, it accepts again
	_, a = postFeishu(t, srv, "fs", feishuText("", "m"))
	require.Equal(t, 0, a.Code)
}

func TestWeComAnswers(t *testing.T) {
	clk := newFakeClock()
	srv := newServer(t, robotsim.Config{Now: clk.Now, Window: time.Minute},
		robotsim.Robot{Platform: robotsim.PlatformWeCom, Token: "wx-key"})
	u := robotsim.WebhookURL(srv.URL, robotsim.PlatformWeCom, "wx-key")
	send := func(body any) answer { return do(t, http.MethodPost, u, "application/json", mustJSON(t, body)) }

	a := send(map[string]any{"msgtype": "text", "text": map[string]any{"content": "disk full",
		"mentioned_list": []string{"zhangsan", "@all"}, "mentioned_mobile_list": []string{"13800000001"}}})
	require.Equal(t, 0, a.ErrCode)
	rec := srv.Received("wx-key")[0]
	require.Equal(t, []string{"zhangsan"}, rec.AtUserIDs)
	require.True(t, rec.AtAll)
	require.Equal(t, []string{"13800000001"}, rec.AtMobiles)

	tests := []struct {
		name string
		body any
		code int
	}{
		{"text over 2048 bytes", map[string]any{"msgtype": "text", "text": map[string]any{"content": strings.Repeat("a", 2049)}}, robotsim.WeComErrTooLong},
		{"markdown over 4096 bytes", map[string]any{"msgtype": "markdown", "markdown": map[string]any{"content": strings.Repeat("a", 4097)}}, robotsim.WeComErrTooLong},
		{"markdown at 4096 bytes", map[string]any{"msgtype": "markdown", "markdown": map[string]any{"content": strings.Repeat("a", 4096)}}, 0},
		{"nine articles", map[string]any{"msgtype": "news", "news": map[string]any{"articles": make([]map[string]any, 9)}}, robotsim.WeComErrBadBody},
		{"unknown msgtype", map[string]any{"msgtype": "voice"}, robotsim.WeComErrInvalidType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.code, send(tt.body).ErrCode)
		})
	}
	require.Equal(t, robotsim.WeComErrInvalidURL,
		do(t, http.MethodPost, robotsim.WebhookURL(srv.URL, robotsim.PlatformWeCom, "other"), "application/json", []byte(`{}`)).ErrCode)

	// 6 requests so far counted in the window; 14 more fill the 20.
	for i := range 14 {
		require.Equal(t, 0, send(textBody("x")).ErrCode, "message %d", 7+i)
	}
	a = send(textBody("x"))
	require.Equal(t, robotsim.WeComErrFrequency, a.ErrCode)
	require.Equal(t, "api freq out of limit", a.ErrMsg)
}
