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

// TestRequestsRecordEveryPostAndRepeats: every request a DingTalk robot
// receives is in Requests with what became of it, and each msgUuid
// dropped as a duplicate is counted on its message in Received, which
// keeps the order of first acceptance.
func TestRequestsRecordEveryPostAndRepeats(t *testing.T) {
	clock := newFakeClock()
	srv := newServer(t, robotsim.Config{Now: clock.Now, Window: testWindow, Ban: testBan},
		robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: dtToken, Limit: 5})
	body := func(uuid, content string) map[string]any {
		b := textBody(content)
		b["msgUuid"] = uuid
		return b
	}
	srv.InjectFault(dtToken, robotsim.Fault{Status: http.StatusServiceUnavailable})
	sendFaulted := func() {
		resp, err := http.Post(srv.WebhookURL(dtToken), "application/json", nil)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	}
	sendFaulted()
	for _, b := range []any{
		body("a", "first"),
		body("a", "first"),                 // repeat
		map[string]any{"msgtype": "video"}, // refused: unsupported, counts in the window
		body("b", "second"),
		body("a", "first"), // repeat again, after b
		body("c", "third"), // the 6th counted send in the window: breach
	} {
		sendDingTalk(t, srv, dtToken, "", b)
	}
	reqs := srv.Requests(dtToken)
	var outcomes, uuids []string
	for _, r := range reqs {
		outcomes = append(outcomes, r.Outcome)
		uuids = append(uuids, r.MsgUUID)
		require.True(t, r.At.Equal(clock.Now()))
	}
	require.Equal(t, []string{robotsim.RequestFaulted, robotsim.RequestAccepted, robotsim.RequestDuplicate,
		robotsim.RequestRefused, robotsim.RequestAccepted, robotsim.RequestDuplicate, robotsim.RequestRefused}, outcomes)
	require.Equal(t, []string{"", "a", "a", "", "b", "a", "c"}, uuids)
	require.Equal(t, robotsim.DingTalkErrUnsupportedType, reqs[3].ErrCode)
	require.Equal(t, robotsim.DingTalkErrThrottled, reqs[6].ErrCode)
	require.Equal(t, "third", reqs[6].Content)

	got := srv.Received(dtToken)
	require.Len(t, got, 2)
	require.Equal(t, []string{"a", "b"}, []string{got[0].MsgUUID, got[1].MsgUUID}, "order of first acceptance")
	require.Equal(t, []int{2, 0}, []int{got[0].Repeats, got[1].Repeats})
	st := srv.Stats(dtToken)
	require.Equal(t, 7, st.Requests)
	require.Equal(t, 2, st.Duplicates)
	require.Len(t, reqs, st.Requests, "one record per request")
	require.Nil(t, srv.Requests("unknown"))
}

// TestPOPORequestsRecordEveryPost: POPO has no msgUuid: each accepted
// post is a new message; refusals are recorded with their errcode.
func TestPOPORequestsRecordEveryPost(t *testing.T) {
	srv := newServer(t, robotsim.Config{}, robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "p", Keywords: []string{"ok"}})
	for _, m := range []string{"ok one", "missing", "ok one"} {
		sendPOPO(t, srv, "p", "", m)
	}
	reqs := srv.Requests("p")
	require.Len(t, reqs, 3)
	require.Equal(t, []string{robotsim.RequestAccepted, robotsim.RequestRefused, robotsim.RequestAccepted},
		[]string{reqs[0].Outcome, reqs[1].Outcome, reqs[2].Outcome})
	require.Equal(t, []string{"ok one", "missing", "ok one"}, []string{reqs[0].Content, reqs[1].Content, reqs[2].Content})
	require.Equal(t, robotsim.POPOErrKeywords, reqs[1].ErrCode)
	require.Len(t, srv.Received("p"), 2)
}

// TestRequestsEndpoint: GET /_sim/robots/{token}/requests lists the same
// records as Requests; 404 for an unknown robot.
func TestRequestsEndpoint(t *testing.T) {
	srv := newServer(t, robotsim.Config{}, robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: dtToken},
		robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "idle"})
	b := textBody("x")
	b["msgUuid"] = "u1"
	sendDingTalk(t, srv, dtToken, "", b)
	sendDingTalk(t, srv, dtToken, "", b)
	get := func(token string) (int, []robotsim.Request) {
		resp, err := http.Get(srv.URL + "/_sim/robots/" + token + "/requests")
		require.NoError(t, err)
		defer resp.Body.Close()
		var out []robotsim.Request
		if resp.StatusCode == http.StatusOK {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		}
		return resp.StatusCode, out
	}
	status, reqs := get(dtToken)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, reqs, 2)
	require.Equal(t, robotsim.RequestDuplicate, reqs[1].Outcome)
	require.Equal(t, "u1", reqs[1].MsgUUID)
	status, reqs = get("idle")
	require.Equal(t, http.StatusOK, status)
	require.NotNil(t, reqs)
	require.Empty(t, reqs)
	status, _ = get("nope")
	require.Equal(t, http.StatusNotFound, status)
}

// TestAcceptDelayPlainHTTP: over plain HTTP a delayed server answers only
// after the delay, and processes the request then; SetAcceptDelay(0)
// makes new connections fast again.
func TestAcceptDelayPlainHTTP(t *testing.T) {
	const delay = 300 * time.Millisecond
	srv := robotsim.NewServer(robotsim.Config{}, robotsim.WithAcceptDelay(delay))
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddRobot(robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "p"}))
	post := func() time.Duration {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		start := time.Now()
		resp, err := c.Post(srv.WebhookURL("p"), "application/json", jsonBody(`{"message":"x"}`))
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		return time.Since(start)
	}
	require.GreaterOrEqual(t, post(), delay)
	require.Len(t, srv.Received("p"), 1, "processed after the delay")
	srv.SetAcceptDelay(0)
	require.Less(t, post(), delay)
	require.Len(t, srv.Received("p"), 2)
}

// TestAcceptDelayTLS: over TLS a client cannot finish its handshake
// before the delay; one that gives up first never reaches the simulator,
// and a patient one is answered.
func TestAcceptDelayTLS(t *testing.T) {
	const delay = 400 * time.Millisecond
	srv := robotsim.NewServer(robotsim.Config{}, robotsim.WithTLS(), robotsim.WithAcceptDelay(delay))
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddRobot(robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "p"}))
	require.Regexp(t, `^https://127\.0\.0\.1:\d+$`, srv.URL)
	client := func(timeout time.Duration) *http.Client {
		return &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: srv.TLSClientConfig(), DisableKeepAlives: true}}
	}
	_, err := client(100*time.Millisecond).Post(srv.WebhookURL("p"), "application/json", jsonBody(`{"message":"impatient"}`))
	require.Error(t, err)

	start := time.Now()
	resp, err := client(5*time.Second).Post(srv.WebhookURL("p"), "application/json", jsonBody(`{"message":"patient"}`))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.GreaterOrEqual(t, time.Since(start), delay)

	got := srv.Received("p")
	require.Len(t, got, 1)
	require.Equal(t, "patient", got[0].Content)
	require.Len(t, srv.Requests("p"), 1, "the impatient request never arrived")
	plain := robotsim.NewServer(robotsim.Config{})
	defer plain.Close()
	require.Nil(t, plain.TLSClientConfig(), "plain HTTP has no TLS config")
}

func jsonBody(s string) io.Reader { return strings.NewReader(s) }
