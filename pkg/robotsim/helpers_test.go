package robotsim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/signer"
	"github.com/stretchr/testify/require"
)

// answer is a platform answer as a client sees it.
type answer struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
	Data    *struct {
		MsgID string `json:"msgId"`
	} `json:"data"`
}

// fakeClock is a clock tests advance by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newServer(t *testing.T, cfg robotsim.Config, robots ...robotsim.Robot) *robotsim.Server {
	t.Helper()
	srv := robotsim.NewServer(cfg)
	t.Cleanup(srv.Close)
	for _, r := range robots {
		require.NoError(t, srv.AddRobot(r))
	}
	return srv
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// do sends a request and decodes the platform answer (HTTP 200 expected).
func do(t *testing.T, method, url, contentType string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var a answer
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	return a
}

// sendDingTalk posts body to the robot, signed with secret when non-empty.
func sendDingTalk(t *testing.T, srv *robotsim.Server, token, secret string, body any) answer {
	t.Helper()
	u := robotsim.WebhookURL(srv.URL, robotsim.PlatformDingTalk, token)
	if secret != "" {
		var err error
		u, err = signer.SignDingTalkURL(u, secret, time.Now())
		require.NoError(t, err)
	}
	return do(t, http.MethodPost, u, "application/json", mustJSON(t, body))
}

func textBody(content string) map[string]any {
	return map[string]any{"msgtype": "text", "text": map[string]any{"content": content}}
}

// sendPOPO posts message to the POPO robot, signed with secret when non-empty.
func sendPOPO(t *testing.T, srv *robotsim.Server, id, secret, message string) answer {
	t.Helper()
	body := map[string]any{"message": message}
	if secret != "" {
		ts, sign := signer.POPO(secret, time.Now())
		body["timestamp"], body["signData"] = ts, sign
	}
	u := robotsim.WebhookURL(srv.URL, robotsim.PlatformPOPO, id)
	return do(t, http.MethodPost, u, "application/json", mustJSON(t, body))
}
