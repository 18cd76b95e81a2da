package robotsim_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/stretchr/testify/require"
)

const (
	testWindow = 200 * time.Millisecond
	testBan    = 300 * time.Millisecond
)

// platformCase sends one message to a robot of one platform.
type platformCase struct {
	name      string
	platform  string
	throttled int
	send      func(t *testing.T, srv *robotsim.Server, token, content string) answer
}

var platforms = []platformCase{
	{name: "dingtalk", platform: robotsim.PlatformDingTalk, throttled: robotsim.DingTalkErrThrottled,
		send: func(t *testing.T, srv *robotsim.Server, token, content string) answer {
			return sendDingTalk(t, srv, token, "", textBody(content))
		}},
	{name: "popo", platform: robotsim.PlatformPOPO, throttled: robotsim.POPOErrThrottled,
		send: func(t *testing.T, srv *robotsim.Server, token, content string) answer {
			return sendPOPO(t, srv, token, "", content)
		}},
}

func TestLimitBreachBanAndRecovery(t *testing.T) {
	for _, p := range platforms {
		t.Run(p.name, func(t *testing.T) {
			clock := newFakeClock()
			srv := newServer(t, robotsim.Config{Window: testWindow, Ban: testBan, Now: clock.Now},
				robotsim.Robot{Platform: p.platform, Token: "r", Limit: 3})

			for i := range 3 {
				require.Equal(t, 0, p.send(t, srv, "r", fmt.Sprint("m", i)).ErrCode)
				clock.Advance(10 * time.Millisecond)
			}
			a := p.send(t, srv, "r", "one too many")
			require.Equal(t, p.throttled, a.ErrCode)
			require.Contains(t, a.ErrMsg, "send too fast")
			require.Equal(t, robotsim.Stats{Requests: 4, Accepted: 3, Rejected: 1, Breaches: 1}, srv.Stats("r"))

			// Banned: even after the window has passed, until the ban ends.
			clock.Advance(testWindow + 10*time.Millisecond)
			require.Equal(t, p.throttled, p.send(t, srv, "r", "during ban").ErrCode)
			clock.Advance(testBan - testWindow - 20*time.Millisecond) // 10ms before the ban ends
			require.Equal(t, p.throttled, p.send(t, srv, "r", "still banned").ErrCode)
			require.Equal(t, 2, srv.Stats("r").DuringBan)
			require.Equal(t, 1, srv.Stats("r").Breaches)

			clock.Advance(10 * time.Millisecond) // ban over
			for i := range 3 {
				require.Equal(t, 0, p.send(t, srv, "r", fmt.Sprint("after", i)).ErrCode)
			}
			require.Equal(t, p.throttled, p.send(t, srv, "r", "breach again").ErrCode)
			require.Equal(t, robotsim.Stats{Requests: 10, Accepted: 6, Rejected: 4, Breaches: 2, DuringBan: 2},
				srv.Stats("r"))
			require.Len(t, srv.Received("r"), 6)
		})
	}
}

func TestWindowIsRollingNotFixedBuckets(t *testing.T) {
	for _, p := range platforms {
		t.Run(p.name, func(t *testing.T) {
			clock := newFakeClock()
			srv := newServer(t, robotsim.Config{Window: testWindow, Ban: testBan, Now: clock.Now},
				robotsim.Robot{Platform: p.platform, Token: "r", Limit: 3})

			// t=0: two sends; t=150ms: one (3 in the window).
			require.Equal(t, 0, p.send(t, srv, "r", "a").ErrCode)
			require.Equal(t, 0, p.send(t, srv, "r", "b").ErrCode)
			clock.Advance(150 * time.Millisecond)
			require.Equal(t, 0, p.send(t, srv, "r", "c").ErrCode)
			// t=200ms: a fixed 200ms bucket would start afresh and allow 3;
			// the rolling window still holds c (150ms) so only 2 fit.
			clock.Advance(50 * time.Millisecond)
			require.Equal(t, 0, p.send(t, srv, "r", "d").ErrCode)
			require.Equal(t, 0, p.send(t, srv, "r", "e").ErrCode)
			require.Equal(t, p.throttled, p.send(t, srv, "r", "f").ErrCode)
			require.Equal(t, 1, srv.Stats("r").Breaches)
		})
	}
}

func TestWindowBoundaryExpiresAtExactlyWindow(t *testing.T) {
	clock := newFakeClock()
	srv := newServer(t, robotsim.Config{Window: testWindow, Ban: testBan, Now: clock.Now},
		robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: "r", Limit: 1})
	send := platforms[0].send
	require.Equal(t, 0, send(t, srv, "r", "a").ErrCode)
	clock.Advance(testWindow)
	require.Equal(t, 0, send(t, srv, "r", "b").ErrCode)
	clock.Advance(testWindow - time.Nanosecond)
	require.Equal(t, robotsim.DingTalkErrThrottled, send(t, srv, "r", "c").ErrCode)
}

func TestWindowCountsAuthenticatedAttemptsOnly(t *testing.T) {
	clock := newFakeClock()
	srv := newServer(t, robotsim.Config{Window: testWindow, Ban: testBan, Now: clock.Now},
		robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: "r", Secret: dtSecret, Keywords: []string{"alert"}, Limit: 2})

	// Signature failures do not count...
	for range 5 {
		require.Equal(t, robotsim.DingTalkErrSecurity, sendDingTalk(t, srv, "r", "SECwrong", textBody("alert")).ErrCode)
	}
	// ...a keyword refusal and a duplicate do.
	require.Equal(t, robotsim.DingTalkErrSecurity, sendDingTalk(t, srv, "r", dtSecret, textBody("no keyword")).ErrCode)
	b := textBody("alert")
	b["msgUuid"] = "u"
	require.Equal(t, 0, sendDingTalk(t, srv, "r", dtSecret, b).ErrCode)
	require.Equal(t, robotsim.DingTalkErrThrottled, sendDingTalk(t, srv, "r", dtSecret, b).ErrCode)
	require.Equal(t, robotsim.Stats{Requests: 8, Accepted: 1, Rejected: 7, Breaches: 1, SignatureFailures: 5},
		srv.Stats("r"))
}

func TestConcurrentSendsNeverExceedTheLimit(t *testing.T) {
	for _, p := range platforms {
		t.Run(p.name, func(t *testing.T) {
			srv := newServer(t, robotsim.Config{}, robotsim.Robot{Platform: p.platform, Token: "r", Limit: 20})
			var wg sync.WaitGroup
			codes := make([]int, 60)
			for i := range codes {
				wg.Go(func() { codes[i] = p.send(t, srv, "r", fmt.Sprint("m", i)).ErrCode })
			}
			wg.Wait()
			ok := 0
			for _, c := range codes {
				if c == 0 {
					ok++
				} else {
					require.Equal(t, p.throttled, c)
				}
			}
			require.Equal(t, 20, ok)
			require.Equal(t, robotsim.Stats{Requests: 60, Accepted: 20, Rejected: 40, Breaches: 1, DuringBan: 39},
				srv.Stats("r"))
			require.Len(t, srv.Received("r"), 20)
		})
	}
}

func TestDefaultLimits(t *testing.T) {
	for _, p := range platforms {
		t.Run(p.name, func(t *testing.T) {
			clock := newFakeClock()
			srv := newServer(t, robotsim.Config{Now: clock.Now}, robotsim.Robot{Platform: p.platform, Token: "r"})
			want := map[string]int{robotsim.PlatformDingTalk: 20, robotsim.PlatformPOPO: 60}[p.platform]
			for i := range want {
				require.Equal(t, 0, p.send(t, srv, "r", fmt.Sprint(i)).ErrCode)
			}
			require.Equal(t, p.throttled, p.send(t, srv, "r", "over").ErrCode)
			// Default ban is ten minutes, default window one minute.
			clock.Advance(10*time.Minute - time.Millisecond)
			require.Equal(t, p.throttled, p.send(t, srv, "r", "banned").ErrCode)
			clock.Advance(time.Millisecond)
			require.Equal(t, 0, p.send(t, srv, "r", "free").ErrCode)
		})
	}
}

func TestBreachEmptiesTheWindow(t *testing.T) {
	clock := newFakeClock()
	// A ban shorter than the window shows the breach starts the robot afresh.
	srv := newServer(t, robotsim.Config{Window: time.Second, Ban: 100 * time.Millisecond, Now: clock.Now},
		robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "r", Limit: 2})
	send := platforms[1].send
	require.Equal(t, 0, send(t, srv, "r", "a").ErrCode)
	require.Equal(t, 0, send(t, srv, "r", "b").ErrCode)
	require.Equal(t, robotsim.POPOErrThrottled, send(t, srv, "r", "c").ErrCode)
	clock.Advance(100 * time.Millisecond)
	require.Equal(t, 0, send(t, srv, "r", "d").ErrCode)
	require.Equal(t, 0, send(t, srv, "r", "e").ErrCode)
	require.Equal(t, robotsim.POPOErrThrottled, send(t, srv, "r", "f").ErrCode)
}
