package robotsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/stretchr/testify/require"
)

func TestAddRobotValidates(t *testing.T) {
	tests := []struct {
		name    string
		robot   robotsim.Robot
		wantErr bool
	}{
		{name: "dingtalk", robot: robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: "t"}},
		{name: "popo", robot: robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "t"}},
		{name: "empty token", robot: robotsim.Robot{Platform: robotsim.PlatformPOPO}, wantErr: true},
		{name: "unknown platform", robot: robotsim.Robot{Platform: "slack", Token: "t"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := robotsim.New(robotsim.Config{}).AddRobot(tt.robot)
			if tt.wantErr {
				require.ErrorIs(t, err, robotsim.ErrInvalidRobot)
			} else {
				require.NoError(t, err)
			}
		})
	}
}

func TestAddRobotAgainResetsIt(t *testing.T) {
	r := robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: "t"}
	srv := newServer(t, robotsim.Config{}, r)
	require.Equal(t, 0, sendDingTalk(t, srv, "t", "", textBody("x")).ErrCode)
	require.NoError(t, srv.AddRobot(r))
	require.Empty(t, srv.Received("t"))
	require.Equal(t, robotsim.Stats{}, srv.Stats("t"))
}

func TestFaults(t *testing.T) {
	srv := newServer(t, robotsim.Config{}, robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: "t", Limit: 1})
	u := srv.WebhookURL("t")
	post := func() (*http.Response, error) {
		return http.Post(u, "application/json", strings.NewReader(`{"msgtype":"text","text":{"content":"x"}}`))
	}

	srv.InjectFault("t", robotsim.Fault{Status: http.StatusInternalServerError, Count: 2})
	srv.InjectFault("t", robotsim.Fault{Body: `{"errcode":-1,"errmsg":"system busy"}`})
	srv.InjectFault("t", robotsim.Fault{Status: http.StatusTooManyRequests})
	wantStatus := []int{500, 500, 200, 429}
	wantBody := []string{"injected fault 500", "injected fault 500", `"errcode":-1`, "injected fault 429"}
	for i := range wantStatus {
		resp, err := post()
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, wantStatus[i], resp.StatusCode, i)
		require.Contains(t, string(b), wantBody[i], i)
	}
	// Faulted requests did not count toward the window (limit 1).
	require.Equal(t, 0, do(t, http.MethodPost, u, "application/json", mustJSON(t, textBody("x"))).ErrCode)
	require.Equal(t, robotsim.Stats{Requests: 5, Accepted: 1, Faulted: 4}, srv.Stats("t"))
}

func TestFaultDropClosesTheConnection(t *testing.T) {
	srv := newServer(t, robotsim.Config{}, robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "p"})
	srv.InjectFault("p", robotsim.Fault{Drop: true})
	_, err := http.Post(srv.WebhookURL("p"), "application/json", strings.NewReader(`{"message":"x"}`))
	require.Error(t, err)
	require.Empty(t, srv.Received("p"))
	require.Equal(t, 0, sendPOPO(t, srv, "p", "", "after").ErrCode)
	require.Equal(t, robotsim.Stats{Requests: 2, Accepted: 1, Faulted: 1}, srv.Stats("p"))
}

func TestFaultDelay(t *testing.T) {
	srv := newServer(t, robotsim.Config{}, robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "p"})

	// Delay only: the request is then processed normally.
	srv.InjectFault("p", robotsim.Fault{Delay: 20 * time.Millisecond})
	require.Equal(t, 0, sendPOPO(t, srv, "p", "", "slow").ErrCode)
	require.Equal(t, robotsim.Stats{Requests: 1, Accepted: 1}, srv.Stats("p"))

	// A delay longer than the client's timeout: the client gives up.
	srv.InjectFault("p", robotsim.Fault{Delay: 5 * time.Second, Status: 503})
	client := &http.Client{Timeout: 50 * time.Millisecond}
	_, err := client.Post(srv.WebhookURL("p"), "application/json", strings.NewReader(`{"message":"x"}`))
	require.Error(t, err)
	require.Len(t, srv.Received("p"), 1)
}

func TestInspectionEndpoints(t *testing.T) {
	clock := newFakeClock()
	srv := newServer(t, robotsim.Config{Now: clock.Now, Window: testWindow, Ban: testBan},
		robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "b-popo", Secret: "s", Limit: 1},
		robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: "a-dt", Secret: "s"},
	)
	require.Equal(t, 0, sendDingTalk(t, srv, "a-dt", "s", textBody("hello")).ErrCode)
	require.Equal(t, 0, sendPOPO(t, srv, "b-popo", "s", "one").ErrCode)
	require.Equal(t, robotsim.POPOErrThrottled, sendPOPO(t, srv, "b-popo", "s", "two").ErrCode)

	getJSON := func(path string, wantStatus int, v any) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, wantStatus, resp.StatusCode)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
	}

	var robots []robotsim.RobotStatus
	getJSON("/_sim/robots", http.StatusOK, &robots)
	require.Len(t, robots, 2)
	require.NotNil(t, robots[0].FirstAccepted)
	require.True(t, robots[0].FirstAccepted.Equal(clock.Now()), "first acceptance at the clock's time")
	require.True(t, robots[0].LastAccepted.Equal(clock.Now()))
	robots[0].FirstAccepted, robots[0].LastAccepted = nil, nil
	require.Equal(t, robotsim.RobotStatus{Platform: "dingtalk", Token: "a-dt", Limit: 20,
		Stats: robotsim.Stats{Requests: 1, Accepted: 1}, Received: 1}, robots[0])
	require.Equal(t, "b-popo", robots[1].Token)
	require.Equal(t, robotsim.Stats{Requests: 2, Accepted: 1, Rejected: 1, Breaches: 1}, robots[1].Stats)
	require.NotNil(t, robots[1].BannedUntil)
	require.True(t, robots[1].BannedUntil.Equal(clock.Now().Add(testBan)))

	var rec []robotsim.Received
	getJSON("/_sim/robots/b-popo/received", http.StatusOK, &rec)
	require.Len(t, rec, 1)
	require.Equal(t, "one", rec[0].Content)
	require.NotEmpty(t, rec[0].MessageID)
	require.Equal(t, srv.Received("b-popo")[0].Body, rec[0].Body)

	var notFound map[string]string
	getJSON("/_sim/robots/nope/received", http.StatusNotFound, &notFound)

	// The listing never shows a secret.
	resp, err := http.Get(srv.URL + "/_sim/robots")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NotContains(t, strings.ToLower(string(b)), "secret")
}

func TestReceivedReturnsACopy(t *testing.T) {
	srv := newServer(t, robotsim.Config{}, robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: "t"})
	b := textBody("x")
	b["at"] = map[string]any{"atMobiles": []string{"1"}}
	require.Equal(t, 0, sendDingTalk(t, srv, "t", "", b).ErrCode)
	got := srv.Received("t")
	got[0].Body[0] = 'X'
	got[0].AtMobiles[0] = "changed"
	again := srv.Received("t")
	require.Equal(t, byte('{'), again[0].Body[0])
	require.Equal(t, []string{"1"}, again[0].AtMobiles)
}

func TestSimAsPlainHandler(t *testing.T) {
	sim := robotsim.New(robotsim.Config{})
	require.NoError(t, sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: "t"}))
	require.Nil(t, sim.Received("unknown"))
	require.Equal(t, robotsim.Stats{}, sim.Stats("unknown"))
	require.Equal(t, "", robotsim.WebhookURL("http://x", "slack", "t"))
	require.Equal(t, "http://x/robot/send?access_token=a%26b", robotsim.WebhookURL("http://x", robotsim.PlatformDingTalk, "a&b"))
}

func TestRedact(t *testing.T) {
	require.Equal(t, "…", robotsim.Redact("short"))
	require.Equal(t, "abcd…", robotsim.Redact("abcdefghijkl"))
}
