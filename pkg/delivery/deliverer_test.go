package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/signer"
	"github.com/stretchr/testify/require"
)

// captured is one request as the test server saw it.
type captured struct {
	Method      string
	Path        string
	Query       map[string][]string
	ContentType string
	Body        []byte
}

// platformServer is an httptest server that records requests and answers
// with a fixed status and body.
type platformServer struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []captured
	status int
	body   string
	header http.Header
}

func newPlatformServer(t *testing.T, status int, body string) *platformServer {
	t.Helper()
	ps := &platformServer{status: status, body: body}
	ps.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ps.mu.Lock()
		ps.reqs = append(ps.reqs, captured{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), ContentType: r.Header.Get("Content-Type"), Body: b})
		status, body, header := ps.status, ps.body, ps.header
		ps.mu.Unlock()
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(ps.Close)
	return ps
}

func (ps *platformServer) requests() []captured {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return append([]captured(nil), ps.reqs...)
}

const (
	testToken  = "dt0ken5ecretAccess9876"
	testHookID = "popoHook1d5ecret4321"
	testSecret = "SECxyz5ecretSigningKey"
)

func dingTalkRobot(base string) Robot {
	return Robot{Name: "ops", Platform: PlatformDingTalk, Webhook: base + "/robot/send?access_token=" + testToken, Secret: testSecret}
}

func popoRobot(base string) Robot {
	return Robot{Name: "ops-popo", Platform: PlatformPOPO, Webhook: base + "/open-apis/robots/v1/hook/" + testHookID, Secret: testSecret}
}

func textEnv(id, content string) *envelope.Envelope {
	return &envelope.Envelope{V: 1, ID: id, Robot: "ops", Message: envelope.Message{Text: &envelope.Text{Content: content}}}
}

// steppingClock returns a clock that advances by step at every call.
func steppingClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	t := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := t
		t = t.Add(step)
		return now
	}
}

func TestDeliverDingTalkRequest(t *testing.T) {
	ps := newPlatformServer(t, 200, `{"errcode":0,"errmsg":"ok"}`)
	clock := steppingClock(testNow, 90*time.Second)
	d := newTestDeliverer(t, WithClock(clock))
	robot := dingTalkRobot(ps.URL)
	env := textEnv("msg-1", "hello")
	env.At = &envelope.At{Mobiles: []string{"13800000001"}}

	for i := 0; i < 2; i++ {
		res := d.Deliver(context.Background(), robot, env)
		require.Equal(t, Success, res.Outcome, "%+v", res)
		require.Equal(t, 200, res.HTTPStatus)
		require.NoError(t, res.Err)
	}

	reqs := ps.requests()
	require.Len(t, reqs, 2)
	signs := map[string]bool{}
	for i, r := range reqs {
		require.Equal(t, http.MethodPost, r.Method)
		require.Equal(t, "/robot/send", r.Path)
		require.Equal(t, "application/json; charset=utf-8", r.ContentType)
		require.Equal(t, []string{testToken}, r.Query["access_token"])
		// Signed at send time with the clock of that call.
		sentAt := testNow.Add(time.Duration(i) * 90 * time.Second)
		ts, sign := r.Query["timestamp"][0], r.Query["sign"][0]
		require.Equal(t, signer.Timestamp(sentAt), ts)
		require.NoError(t, signer.VerifyDingTalk(testSecret, ts, sign, sentAt))
		signs[sign] = true

		var body map[string]any
		require.NoError(t, json.Unmarshal(r.Body, &body))
		require.Equal(t, "text", body["msgtype"])
		require.Equal(t, "msg-1", body["msgUuid"])
		require.Equal(t, "hello @13800000001", body["text"].(map[string]any)["content"])
		require.Equal(t, []any{"13800000001"}, body["at"].(map[string]any)["atMobiles"])
	}
	require.Len(t, signs, 2, "every attempt is signed afresh")
}

func TestDeliverDingTalkUnsigned(t *testing.T) {
	ps := newPlatformServer(t, 200, `{"errcode":0,"errmsg":"ok"}`)
	d := newTestDeliverer(t)
	robot := dingTalkRobot(ps.URL)
	robot.Secret = ""
	require.Equal(t, Success, d.Deliver(context.Background(), robot, textEnv("m", "hi")).Outcome)
	q := ps.requests()[0].Query
	require.NotContains(t, q, "sign")
	require.NotContains(t, q, "timestamp")
}

func TestDeliverPOPORequest(t *testing.T) {
	ps := newPlatformServer(t, 200, `{"data":{"msgId":"popo-77"},"errcode":0,"errmsg":"ok"}`)
	d := newTestDeliverer(t, WithClock(steppingClock(testNow, time.Minute)))
	robot := popoRobot(ps.URL)
	env := textEnv("m-2", "build broken")
	env.At = &envelope.At{UserIDs: []string{"alice@corp"}}

	var signs []string
	for i := 0; i < 2; i++ {
		res := d.Deliver(context.Background(), robot, env)
		require.Equal(t, Success, res.Outcome, "%+v", res)
		require.Equal(t, "popo-77", res.MessageID)
	}
	for i, r := range ps.requests() {
		require.Equal(t, "/open-apis/robots/v1/hook/"+testHookID, r.Path)
		require.Equal(t, "application/json; charset=utf-8", r.ContentType)
		var body struct{ Message, Timestamp, SignData string }
		require.NoError(t, json.Unmarshal(r.Body, &body))
		require.Equal(t, "build broken\n@alice@corp", body.Message)
		sentAt := testNow.Add(time.Duration(i) * time.Minute)
		require.Equal(t, signer.Timestamp(sentAt), body.Timestamp)
		require.NoError(t, signer.VerifyPOPO(testSecret, body.Timestamp, body.SignData, sentAt))
		signs = append(signs, body.SignData)
	}
	require.NotEqual(t, signs[0], signs[1])
}

func TestDeliverRefusesWithoutRequest(t *testing.T) {
	ps := newPlatformServer(t, 200, `{"errcode":0,"errmsg":"ok"}`)
	d := newTestDeliverer(t)
	withKeywords := dingTalkRobot(ps.URL)
	withKeywords.Keywords = []string{"[alert]"}
	popoKw := popoRobot(ps.URL)
	popoKw.Keywords = []string{"[alert]"}
	huge := textEnv("big", strings.Repeat("x", DingTalkMaxBody))

	tests := []struct {
		name   string
		robot  Robot
		env    *envelope.Envelope
		errIs  error
		reason string
	}{
		{"missing keyword", withKeywords, textEnv("a", "no kw"), ErrMissingKeyword, "keywords not in content"},
		{"missing keyword popo", popoKw, textEnv("a", "no kw"), ErrMissingKeyword, "keywords not in content"},
		{"too long", dingTalkRobot(ps.URL), huge, ErrTooLong, "message too long"},
		{"nil envelope", dingTalkRobot(ps.URL), nil, ErrInvalidMessage, "invalid message"},
		{"no kind", dingTalkRobot(ps.URL), &envelope.Envelope{ID: "x"}, ErrInvalidMessage, "invalid message"},
		{"no kind popo", popoRobot(ps.URL), &envelope.Envelope{ID: "x"}, ErrInvalidMessage, "invalid message"},
		{"unknown platform", Robot{Name: "f", Platform: "slack", Webhook: ps.URL}, textEnv("a", "b"), ErrInvalidRobot, "unknown platform"},
		{"bad webhook", Robot{Name: "b", Platform: PlatformDingTalk, Webhook: "ftp://x/y"}, textEnv("a", "b"), ErrInvalidRobot, "invalid webhook"},
		{"unparsable webhook", Robot{Name: "b", Platform: PlatformDingTalk, Webhook: "http://[::1"}, textEnv("a", "b"), ErrInvalidRobot, "invalid webhook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := d.Deliver(context.Background(), tt.robot, tt.env)
			require.Equal(t, Permanent, res.Outcome)
			require.ErrorIs(t, res.Err, tt.errIs)
			require.Equal(t, tt.reason, res.Reason)
			require.Zero(t, res.HTTPStatus)
		})
	}
	require.Empty(t, ps.requests(), "no HTTP request for a message that cannot succeed")

	// With the keyword present it goes out.
	require.Equal(t, Success, d.Deliver(context.Background(), withKeywords, textEnv("b", "[alert] disk")).Outcome)
	require.Len(t, ps.requests(), 1)
}

func TestDeliverClassifiesAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		header http.Header
		want   Outcome
		code   int
		after  time.Duration
	}{
		{"ok", 200, `{"errcode":0,"errmsg":"ok"}`, nil, Success, 0, 0},
		{"200 with errcode is a failure", 200, `{"errcode":310000,"errmsg":"sign not match"}`, nil, Permanent, 310000, 0},
		{"throttled", 200, `{"errcode":130101,"errmsg":"send too fast"}`, nil, Throttled, 130101, 0},
		{"busy", 200, `{"errcode":-1,"errmsg":"系统繁忙"}`, nil, Retryable, -1, 0},
		{"proxy page", 200, `<html>`, nil, Retryable, 0, 0},
		{"gateway", 200, `{"status":1111,"wait":5}`, nil, Wait, 1111, 5 * time.Second},
		{"429", 429, ``, http.Header{"Retry-After": {"7"}}, Wait, 0, 7 * time.Second},
		{"quota", 200, `{"errcode":90030,"errmsg":"webhook over limit"}`, nil, Wait, 90030, DefaultMaxRetryAfter},
		{"503", 503, ``, http.Header{"Retry-After": {"9"}}, Retryable, 0, 9 * time.Second},
		{"404", 404, `not found`, nil, Permanent, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := newPlatformServer(t, tt.status, tt.body)
			ps.header = tt.header
			d := newTestDeliverer(t)
			res := d.Deliver(context.Background(), dingTalkRobot(ps.URL), textEnv("m", "x"))
			require.Equal(t, tt.want, res.Outcome, "%+v", res)
			require.Equal(t, tt.status, res.HTTPStatus)
			require.Equal(t, tt.code, res.ErrCode)
			require.Equal(t, tt.after, res.RetryAfter)
			require.Len(t, ps.requests(), 1)
		})
	}
}

// blockingServer holds every request until the test ends, and reports each
// arrival on arrived.
func blockingServer(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	arrived := make(chan struct{}, 16)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv, arrived
}

func TestDeliverParentCancelled(t *testing.T) {
	srv, arrived := blockingServer(t)
	d := newTestDeliverer(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result, 1)
	go func() { done <- d.Deliver(ctx, dingTalkRobot(srv.URL), textEnv("m", "x")) }()
	<-arrived
	cancel()
	res := <-done
	require.Equal(t, Retryable, res.Outcome)
	require.ErrorIs(t, res.Err, context.Canceled, "a shutdown is recognisable")
	require.ErrorIs(t, res.Err, ErrRequest)
	require.Equal(t, "cancelled", res.Reason)
	require.NotContains(t, res.Err.Error(), testToken)

	// Already cancelled: no request at all.
	res = d.Deliver(ctx, dingTalkRobot(srv.URL), textEnv("m", "x"))
	require.ErrorIs(t, res.Err, context.Canceled)
	require.Len(t, arrived, 0)
}

func TestDeliverRequestTimeout(t *testing.T) {
	srv, _ := blockingServer(t)
	d := newTestDeliverer(t, WithTimeout(50*time.Millisecond))
	res := d.Deliver(context.Background(), popoRobot(srv.URL), textEnv("m", "x"))
	require.Equal(t, Retryable, res.Outcome)
	require.Equal(t, "request timed out", res.Reason)
	require.ErrorIs(t, res.Err, ErrRequest)
	require.NotErrorIs(t, res.Err, context.Canceled)
	require.NotContains(t, res.Err.Error(), testHookID)
}

func TestDeliverConnectionErrors(t *testing.T) {
	// Refused: a port bound by this test that nobody listens on.
	refusedURL := refusingURL(t)

	// Reset/EOF: a server that closes the connection without answering.
	reset := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // RST instead of FIN
			}
			_ = conn.Close()
		}
	}))
	defer reset.Close()

	d := newTestDeliverer(t)
	for _, tt := range []struct {
		name, base, reason string
	}{
		{"refused", refusedURL, "connection refused"},
		{"reset", reset.URL, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, robot := range []Robot{dingTalkRobot(tt.base), popoRobot(tt.base)} {
				res := d.Deliver(context.Background(), robot, textEnv("m", "x"))
				require.Equal(t, Retryable, res.Outcome, "%+v", res)
				require.ErrorIs(t, res.Err, ErrRequest)
				if tt.reason != "" {
					require.Equal(t, tt.reason, res.Reason)
				}
				require.NotContains(t, res.Err.Error(), testToken)
				require.NotContains(t, res.Err.Error(), testHookID)
			}
		})
	}
}

func TestDeliverReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	d := newTestDeliverer(t)
	for i := 0; i < 5; i++ {
		require.Equal(t, Success, d.Deliver(context.Background(), dingTalkRobot(srv.URL), textEnv("m", "x")).Outcome)
	}
	require.Equal(t, int32(1), conns.Load(), "keep-alive: one connection for sequential deliveries")
}

func TestDeliverDoesNotFollowRedirects(t *testing.T) {
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer target.Close()
	ps := newPlatformServer(t, http.StatusFound, "")
	ps.header = http.Header{"Location": {target.URL}}
	d := newTestDeliverer(t)
	res := d.Deliver(context.Background(), dingTalkRobot(ps.URL), textEnv("m", "x"))
	require.Equal(t, Permanent, res.Outcome)
	require.Equal(t, http.StatusFound, res.HTTPStatus)
	require.Zero(t, hits.Load())
}

func TestDeliverLogsWithoutSecrets(t *testing.T) {
	ps := newPlatformServer(t, 200, `{"errcode":300001,"errmsg":"token `+testToken+` is not exist"}`)
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := newTestDeliverer(t, WithLogger(logger))
	res := d.Deliver(context.Background(), dingTalkRobot(ps.URL), textEnv("m", "x"))
	require.Equal(t, Permanent, res.Outcome)
	out := buf.String()
	require.Contains(t, out, `"outcome":"permanent"`)
	require.Contains(t, out, `"webhook":"`+ps.URL+`/robot/send"`)
	require.NotContains(t, out, testToken)
	require.NotContains(t, out, testSecret)
}

func TestDeliverConcurrent(t *testing.T) {
	ps := newPlatformServer(t, 200, `{"errcode":0,"errmsg":"ok"}`)
	d := newTestDeliverer(t)
	var wg sync.WaitGroup
	results := make([]Result, 16)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			robot := dingTalkRobot(ps.URL)
			if i%2 == 1 {
				robot = popoRobot(ps.URL)
			}
			results[i] = d.Deliver(context.Background(), robot, textEnv("m", "x"))
		}()
	}
	wg.Wait()
	for _, res := range results {
		require.Equal(t, Success, res.Outcome, "%+v", res)
	}
	require.Len(t, ps.requests(), 16)
}
