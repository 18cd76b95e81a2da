package robotsim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/robotsim"
)

func TestTokenFromWebhook(t *testing.T) {
	for _, tc := range []struct {
		name, platform, webhook, want string
		err                           error
	}{
		{"dingtalk", robotsim.PlatformDingTalk, "https://oapi.dingtalk.com/robot/send?access_token=abc&x=1", "abc", nil},
		{"dingtalk without token", robotsim.PlatformDingTalk, "https://oapi.dingtalk.com/robot/send", "", robotsim.ErrNoToken},
		{"popo", robotsim.PlatformPOPO, "http://127.0.0.1:1/open-apis/robots/v1/hook/h-1", "h-1", nil},
		{"popo trailing slash", robotsim.PlatformPOPO, "http://127.0.0.1:1/open-apis/robots/v1/hook/h-1/", "h-1", nil},
		{"popo without id", robotsim.PlatformPOPO, "http://127.0.0.1:1/open-apis/robots/v1/hook/", "", robotsim.ErrNoToken},
		{"feishu", robotsim.PlatformFeishu, "https://open.feishu.cn/open-apis/bot/v2/hook/f1", "f1", nil},
		{"wecom", robotsim.PlatformWeCom, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k1", "k1", nil},
		{"unknown platform", "slack", "https://x/y", "", robotsim.ErrInvalidRobot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := robotsim.TokenFromWebhook(tc.platform, tc.webhook)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// One worker configuration file drives the simulator: every robot with its
// token, secret (inline or from the environment) and keywords, at its
// platform's limit and window in the file (defaults where not set), not
// the lower rate a robot is given.
func TestLoadConfig(t *testing.T) {
	base := "http://127.0.0.1:1"
	file := writeConfig(t, fmt.Sprintf(`
platforms:
  dingtalk: {limit: 7, window: 2s}
  popo: {limit: 9, window: 3s}
robots:
  - {name: a, platform: dingtalk, webhook: %q, secret_env: A_SECRET, keywords: [alert], limit: 3}
  - {name: b, platform: popo, webhook: %q, secret: popo-secret}
  - {name: c, platform: feishu, webhook: %q}
  - {name: d, platform: wecom, webhook: %q}
`, robotsim.WebhookURL(base, robotsim.PlatformDingTalk, "dt"), robotsim.WebhookURL(base, robotsim.PlatformPOPO, "po"),
		robotsim.WebhookURL(base, robotsim.PlatformFeishu, "fs"), robotsim.WebhookURL(base, robotsim.PlatformWeCom, "wc")))
	env := map[string]string{"A_SECRET": "SECa"}
	robots, err := robotsim.LoadConfig(file, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	require.Equal(t, []robotsim.Robot{
		{Platform: robotsim.PlatformDingTalk, Token: "dt", Secret: "SECa", Keywords: []string{"alert"}, Limit: 7, Window: 2 * time.Second},
		{Platform: robotsim.PlatformPOPO, Token: "po", Secret: "popo-secret", Limit: 9, Window: 3 * time.Second},
		{Platform: robotsim.PlatformFeishu, Token: "fs", Limit: 100, Window: time.Minute, BurstLimit: 5},
		{Platform: robotsim.PlatformWeCom, Token: "wc", Limit: 20, Window: time.Minute},
	}, robots)

	_, err = robotsim.LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"), nil)
	require.ErrorIs(t, err, os.ErrNotExist)
	bad := writeConfig(t, `robots: [{name: a, platform: dingtalk, webhook: "https://x/robot/send?other=SECRETVALUE"}]`)
	_, err = robotsim.LoadConfig(bad, nil)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "SECRETVALUE")
}

// A robot's own Window overrides the Sim's: 2 per 100ms admits a third
// only after 100ms, while the Sim's window is a minute.
func TestRobotWindow(t *testing.T) {
	clock := newFakeClock()
	srv := newServer(t, robotsim.Config{Now: clock.Now, CountOnly: true},
		robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "p", Limit: 2, Window: 100 * time.Millisecond})
	for i := range 2 {
		require.Zero(t, sendPOPO(t, srv, "p", "", fmt.Sprint("m", i)).ErrCode)
	}
	clock.Advance(100 * time.Millisecond)
	require.Zero(t, sendPOPO(t, srv, "p", "", "m2").ErrCode)
	require.Zero(t, srv.Stats("p").Breaches)
}

// A counting-only Sim keeps no message and no request, and counts exactly:
// posts, DingTalk repeats by msgUuid, repeated contents on every platform,
// breaches and bad signatures; GET /_sim/stats serves the same totals.
func TestCountOnlyCounters(t *testing.T) {
	clock := newFakeClock()
	srv := newServer(t, robotsim.Config{Now: clock.Now, CountOnly: true},
		robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: "dt", Secret: "SECdt", Limit: 3},
		robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "po", Secret: "psec", Limit: 3},
		robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "idle"})

	withUUID := func(content, uuid string) map[string]any {
		b := textBody(content)
		b["msgUuid"] = uuid
		return b
	}
	require.Zero(t, sendDingTalk(t, srv, "dt", "SECdt", withUUID("one", "u1")).ErrCode)
	clock.Advance(time.Second)
	require.Zero(t, sendDingTalk(t, srv, "dt", "SECdt", withUUID("one", "u1")).ErrCode, "a repeat is answered ok")
	require.Equal(t, robotsim.DingTalkErrSecurity, sendDingTalk(t, srv, "dt", "SECwrong", withUUID("two", "u2")).ErrCode)
	require.Zero(t, sendDingTalk(t, srv, "dt", "SECdt", withUUID("one", "u3")).ErrCode, "same text, another msgUuid")
	require.Equal(t, robotsim.DingTalkErrThrottled, sendDingTalk(t, srv, "dt", "SECdt", withUUID("four", "u4")).ErrCode)

	require.Zero(t, sendPOPO(t, srv, "po", "psec", "x").ErrCode)
	require.Zero(t, sendPOPO(t, srv, "po", "psec", "x").ErrCode)
	require.Zero(t, sendPOPO(t, srv, "po", "psec", "y").ErrCode)
	require.Equal(t, robotsim.POPOErrSignature, sendPOPO(t, srv, "po", "bad", "z").ErrCode)

	require.Equal(t, robotsim.Stats{Requests: 5, Accepted: 2, Rejected: 2, Breaches: 1, Duplicates: 1,
		SignatureFailures: 1, RepeatedContent: 1}, srv.Stats("dt"))
	require.Equal(t, robotsim.Stats{Requests: 4, Accepted: 3, Rejected: 1, SignatureFailures: 1,
		RepeatedContent: 1}, srv.Stats("po"))
	require.Empty(t, srv.Received("dt"), "nothing kept")
	require.Empty(t, srv.Requests("dt"), "nothing kept")
	require.Empty(t, srv.Requests("po"))

	start := newFakeClock().Now()
	want := robotsim.Totals{Robots: 3, Active: 2,
		Stats: robotsim.Stats{Requests: 9, Accepted: 5, Rejected: 3, Breaches: 1, Duplicates: 1,
			SignatureFailures: 2, RepeatedContent: 2},
		Anomalies: []string{"dt", "po"}}
	got := srv.Totals()
	require.Equal(t, start, *got.FirstAccepted)
	require.Equal(t, start.Add(time.Second), *got.LastAccepted)
	got.FirstAccepted, got.LastAccepted = nil, nil
	require.Equal(t, want, got)

	resp, err := http.Get(srv.URL + "/_sim/stats")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var served robotsim.Totals
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&served))
	require.True(t, start.Equal(*served.FirstAccepted))
	served.FirstAccepted, served.LastAccepted = nil, nil
	require.Equal(t, want, served)

	rs := srv.Robots()
	require.Len(t, rs, 3)
	require.Equal(t, "dt", rs[0].Token)
	require.Equal(t, 2, rs[0].Received)
	require.Nil(t, rs[1].FirstAccepted, "idle robot")
}

// A fleet of 20,000 robots from one worker configuration loads and serves:
// the simulator of the fleet-scale benchmark.
func TestLoadConfig20000Robots(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 robots")
	}
	const n = 20000
	var b strings.Builder
	b.WriteString("robots:\n")
	for i := range n {
		platform := robotsim.PlatformDingTalk
		if i%2 == 1 {
			platform = robotsim.PlatformPOPO
		}
		fmt.Fprintf(&b, "  - {name: r%05d, platform: %s, webhook: %q, secret: s%05d}\n", i, platform,
			robotsim.WebhookURL("http://127.0.0.1:1", platform, fmt.Sprintf("t%05d", i)), i)
	}
	robots, err := robotsim.LoadConfig(writeConfig(t, b.String()), nil)
	require.NoError(t, err)
	require.Len(t, robots, n)
	srv := newServer(t, robotsim.Config{CountOnly: true}, robots...)
	require.Zero(t, sendPOPO(t, srv, "t19999", "s19999", "last").ErrCode)
	require.Zero(t, sendDingTalk(t, srv, "t00000", "s00000", textBody("first")).ErrCode)
	tot := srv.Totals()
	require.Equal(t, n, tot.Robots)
	require.Equal(t, 2, tot.Active)
	require.Equal(t, 2, tot.Stats.Accepted)
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}
