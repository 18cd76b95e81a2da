package robotsim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
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

// A count-only simulator holds 20,000 robots and counts each one's posts.
func TestCountOnly20000Robots(t *testing.T) {
	const n = 20_000
	robots := make([]robotsim.Robot, n)
	for i := range robots {
		platform := robotsim.PlatformDingTalk
		if i%2 == 1 {
			platform = robotsim.PlatformPOPO
		}
		robots[i] = robotsim.Robot{Platform: platform, Token: fmt.Sprintf("t%05d", i), Secret: fmt.Sprintf("s%05d", i)}
	}
	srv := newServer(t, robotsim.Config{CountOnly: true}, robots...)
	require.Zero(t, sendPOPO(t, srv, "t19999", "s19999", "last").ErrCode)
	require.Zero(t, sendDingTalk(t, srv, "t00000", "s00000", textBody("first")).ErrCode)
	tot := srv.Totals()
	require.Equal(t, n, tot.Robots)
	require.Equal(t, 2, tot.Active)
	require.Equal(t, 2, tot.Stats.Accepted)
}
