package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/gateway"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/stream"
)

// now is the gateway's clock in the tests.
var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	js   jetstream.JetStream
	topo stream.Topology
	srv  *httptest.Server
	logs *testenv.SyncBuffer
	gw   *gateway.Gateway
}

// newFixture serves a gateway publishing to a fresh topology on url.
func newFixture(t *testing.T, url string, opts gateway.Options, popts ...publisher.Option) fixture {
	t.Helper()
	_, js := testenv.Connect(t, url)
	return serve(t, js, testenv.Topology(t, js), opts, popts...)
}

// serve serves a gateway publishing to topo, which it ensures.
func serve(t *testing.T, js jetstream.JetStream, topo stream.Topology, opts gateway.Options, popts ...publisher.Option) fixture {
	t.Helper()
	require.NoError(t, topo.Ensure(context.Background(), js))
	pub, err := publisher.New(js, topo, popts...)
	require.NoError(t, err)
	logs := &testenv.SyncBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.Now == nil {
		opts.Now = func() time.Time { return now }
	}
	if len(opts.Tokens) == 0 && len(opts.Access) == 0 {
		opts.NoAuth = true
	}
	g, err := gateway.New(pub, opts)
	require.NoError(t, err)
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return fixture{js: js, topo: topo, srv: srv, logs: logs, gw: g}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// errBody decodes an error response.
func (r response) errBody(t *testing.T) (msg string, problems []string) {
	t.Helper()
	var b struct {
		Error    string   `json:"error"`
		Problems []string `json:"problems"`
	}
	require.NoError(t, json.Unmarshal(r.body, &b), "body %s", r.body)
	require.NotEmpty(t, b.Error)
	return b.Error, b.Problems
}

func (f fixture) do(t *testing.T, method, path, body string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func (f fixture) post(t *testing.T, path, body string, header ...string) response {
	t.Helper()
	return f.do(t, http.MethodPost, path, body, header...)
}

// accepted requires a 202 single-message response and returns it.
func accepted(t *testing.T, r response) gateway.Result {
	t.Helper()
	require.Equal(t, http.StatusAccepted, r.status, "body %s", r.body)
	var res gateway.Result
	require.NoError(t, json.Unmarshal(r.body, &res))
	return res
}

// stored returns the envelope stored at seq, requiring it on robot's subject.
func (f fixture) stored(t *testing.T, robot string, seq uint64) *envelope.Envelope {
	t.Helper()
	s, err := f.js.Stream(context.Background(), f.topo.OutStream())
	require.NoError(t, err)
	m, err := s.GetMsg(context.Background(), seq)
	require.NoError(t, err)
	require.Equal(t, f.topo.OutSubject(robot), m.Subject)
	env, err := envelope.Decode(m.Data)
	require.NoError(t, err)
	require.Equal(t, stream.MsgID(env.Robot, env.ID), m.Header.Get(jetstream.MsgIDHeader), "the robot-scoped envelope id is the dedup id")
	return env
}

// count returns the number of messages in the outbound stream.
func (f fixture) count(t *testing.T) uint64 {
	t.Helper()
	s, err := f.js.Stream(context.Background(), f.topo.OutStream())
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

func ptr[T any](v T) *T { return &v }

func TestNewOptions(t *testing.T) {
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	pub, err := publisher.New(js, stream.Topology{})
	require.NoError(t, err)
	tests := []struct {
		name string
		pub  *publisher.Publisher
		opts gateway.Options
		ok   bool
	}{
		{name: "zero options: no authentication chosen", pub: pub},
		{name: "no auth", pub: pub, ok: true, opts: gateway.Options{NoAuth: true}},
		{name: "no auth with tokens", pub: pub, opts: gateway.Options{NoAuth: true, Tokens: []string{"t"}}},
		{name: "limited token without a limiter", pub: pub, opts: gateway.Options{Access: []gateway.Token{{Name: "a", SHA256: [32]byte{1}, Rate: 1}}}},
		{name: "duplicate token names", pub: pub, opts: gateway.Options{Access: []gateway.Token{{Name: "a", SHA256: [32]byte{1}}, {Name: "a", SHA256: [32]byte{2}}}}},
		{name: "scoped token", pub: pub, ok: true, opts: gateway.Options{Access: []gateway.Token{{Name: "a", SHA256: [32]byte{1}, Robots: []string{"team-a-*"}}}}},
		{name: "all options", pub: pub, ok: true, opts: gateway.Options{MaxBodyBytes: 10, Tokens: []string{"t"}, Robots: []string{"ops", "dev-2"}}},
		{name: "nil publisher", pub: nil},
		{name: "negative body limit", pub: pub, opts: gateway.Options{NoAuth: true, MaxBodyBytes: -1}},
		{name: "empty token", pub: pub, opts: gateway.Options{Tokens: []string{"a", " "}}},
		{name: "bad robot name", pub: pub, opts: gateway.Options{NoAuth: true, Robots: []string{"ops", "a.b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := gateway.New(tt.pub, tt.opts)
			if tt.ok {
				require.NoError(t, err)
				require.NotNil(t, g)
				return
			}
			require.ErrorIs(t, err, gateway.ErrInvalidOption)
		})
	}
}

func TestPostMessage(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{})
	created := time.Date(2025, 2, 1, 8, 0, 0, 0, time.UTC)
	full, err := envelope.Encode(envelope.New("dev", envelope.Message{Link: &envelope.Link{
		Title: "Build 42", Text: "green", MessageURL: "https://ci.example.com/42"}},
		envelope.WithID("build-42"), envelope.WithClock(func() time.Time { return created })))
	require.NoError(t, err)

	tests := []struct {
		name   string
		body   string
		wantID string // "" for a generated id
		want   envelope.Envelope
	}{
		{
			name: "simplified text",
			body: `{"robot":"ops","text":"disk full on db-3"}`,
			want: envelope.Envelope{V: 1, Robot: "ops", CreatedAt: now,
				Message: envelope.Message{Text: &envelope.Text{Content: "disk full on db-3"}}},
		},
		{
			name: "simplified markdown with ttl, labels, at and id",
			body: `{"robot":"ops","id":"deploy-7","markdown":{"title":"Deploy","text":"## done @138"},"ttl":"10m",
				"labels":{"team":"db"},"at":{"mobiles":["138"]}}`,
			wantID: "deploy-7",
			want: envelope.Envelope{V: 1, Robot: "ops", CreatedAt: now, ExpiresAt: ptr(now.Add(10 * time.Minute)),
				Message: envelope.Message{Markdown: &envelope.Markdown{Title: "Deploy", Text: "## done @138"}},
				Labels:  map[string]string{"team": "db"}, At: &envelope.At{Mobiles: []string{"138"}}},
		},
		{
			name:   "full envelope",
			body:   string(full),
			wantID: "build-42",
			want: envelope.Envelope{V: 1, Robot: "dev", CreatedAt: created,
				Message: envelope.Message{Link: &envelope.Link{Title: "Build 42", Text: "green", MessageURL: "https://ci.example.com/42"}}},
		},
		{
			name: "envelope message without id and created_at",
			body: `{"robot":"ops","message":{"text":{"content":"hi"}},"expires_at":"2025-03-01T13:00:00Z"}`,
			want: envelope.Envelope{V: 1, Robot: "ops", CreatedAt: now, ExpiresAt: ptr(now.Add(time.Hour)),
				Message: envelope.Message{Text: &envelope.Text{Content: "hi"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := accepted(t, f.post(t, "/v1/messages", tt.body))
			require.False(t, res.Duplicate)
			require.NotZero(t, res.Sequence)
			require.Equal(t, tt.want.Robot, res.Robot)
			if tt.wantID != "" {
				require.Equal(t, tt.wantID, res.ID)
			} else {
				require.Len(t, res.ID, 26, "a fresh envelope.NewID")
			}
			got := f.stored(t, tt.want.Robot, res.Sequence)
			want := tt.want
			want.ID = res.ID
			require.Equal(t, &want, got)
		})
	}
	logs := f.logs.String()
	require.Contains(t, logs, "message accepted")
	require.Contains(t, logs, "id=deploy-7")
	require.NotContains(t, logs, "disk full", "bodies are not logged")
}

func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{})
	body := `{"robot":"ops","text":"disk full on db-3"}`
	first := accepted(t, f.post(t, "/v1/messages", body, "Idempotency-Key", "alert-db3-1"))
	require.Equal(t, gateway.Result{ID: "alert-db3-1", Robot: "ops", Sequence: 1}, first)

	second := accepted(t, f.post(t, "/v1/messages", body, "Idempotency-Key", "alert-db3-1"))
	require.Equal(t, gateway.Result{ID: "alert-db3-1", Robot: "ops", Sequence: 1, Duplicate: true}, second)
	require.EqualValues(t, 1, f.count(t), "the retry stored nothing")

	// A body id equal to the key is fine; a different one is refused.
	same := accepted(t, f.post(t, "/v1/messages", `{"robot":"ops","id":"alert-db3-1","text":"x"}`, "Idempotency-Key", "alert-db3-1"))
	require.True(t, same.Duplicate)
	r := f.post(t, "/v1/messages", `{"robot":"ops","id":"other","text":"x"}`, "Idempotency-Key", "alert-db3-1")
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	_, problems := r.errBody(t)
	require.Equal(t, []string{"id: differs from the Idempotency-Key header: send one or make them equal"}, problems)

	r = f.post(t, "/v1/messages", body, "Idempotency-Key", "not a valid id")
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	_, problems = r.errBody(t)
	require.Len(t, problems, 1)
	require.True(t, strings.HasPrefix(problems[0], "Idempotency-Key header: invalid character"), problems[0])
	require.EqualValues(t, 1, f.count(t))
}

func TestInvalidMessages(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{})
	tests := []struct {
		name string
		body string
		want []string // prefixes of the problems, in order
	}{
		{name: "missing robot", body: `{"text":"hi"}`, want: []string{"robot: required"}},
		{name: "no kind", body: `{"robot":"ops"}`, want: []string{"message: no message kind set"}},
		{name: "two kinds", body: `{"robot":"ops","text":"hi","markdown":{"title":"t","text":"x"}}`,
			want: []string{"message: several message kinds set (text, markdown)"}},
		{name: "kind twice", body: `{"robot":"ops","text":"hi","message":{"text":{"content":"x"}}}`,
			want: []string{"text: also set as message.text"}},
		{name: "markdown without title", body: `{"robot":"ops","markdown":{"text":"x"}}`,
			want: []string{"message.markdown.title: required"}},
		{name: "empty text", body: `{"robot":"ops","text":""}`, want: []string{"message.text.content: required"}},
		{name: "oversize text", body: `{"robot":"ops","text":"` + strings.Repeat("x", envelope.MaxContentBytes+1) + `"}`,
			want: []string{"message: too large"}},
		{name: "bad robot and link", body: `{"robot":"a.b","message":{"link":{"title":"t","text":"x","messageUrl":"ftp://x"}}}`,
			want: []string{"robot: invalid character", "message.link.messageUrl: scheme must be http or https"}},
		{name: "bad ttl", body: `{"robot":"ops","text":"hi","ttl":"10 minutes"}`, want: []string{`ttl: "10 minutes" is not a duration`}},
		{name: "negative ttl", body: `{"robot":"ops","text":"hi","ttl":"-1m"}`, want: []string{"ttl: must be positive"}},
		{name: "ttl and expires_at", body: `{"robot":"ops","text":"hi","ttl":"1m","expires_at":"2030-01-01T00:00:00Z"}`,
			want: []string{"ttl: set either ttl or expires_at"}},
		{name: "expired before created", body: `{"robot":"ops","text":"hi","created_at":"2025-01-02T00:00:00Z","expires_at":"2025-01-01T00:00:00Z"}`,
			want: []string{"expires_at: must be after created_at"}},
		{name: "future version", body: `{"v":2,"robot":"ops","text":"hi"}`, want: []string{"v: unsupported version 2"}},
		{name: "unknown field", body: `{"robot":"ops","text":"hi","colour":"red"}`, want: []string{"colour: unknown field"}},
		{name: "unknown nested field", body: `{"robot":"ops","markdown":{"title":"t","text":"x","body":"y"}}`,
			want: []string{"body: unknown field"}},
		{name: "wrong type", body: `{"robot":"ops","text":{"content":"hi"}}`, want: []string{"text: must be a JSON string, not object"}},
		{name: "robots on a single message", body: `{"robot":"ops","robots":["a"],"text":"hi"}`,
			want: []string{"robots: only for POST /v1/fanout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.post(t, "/v1/messages", tt.body)
			require.Equal(t, http.StatusUnprocessableEntity, r.status, "body %s", r.body)
			msg, problems := r.errBody(t)
			require.Equal(t, "invalid message", msg)
			require.Len(t, problems, len(tt.want), "problems %q", problems)
			for i, p := range tt.want {
				require.True(t, strings.HasPrefix(problems[i], p), "problem %d: %q does not start with %q", i, problems[i], p)
			}
		})
	}
	require.Zero(t, f.count(t), "nothing invalid was published")
	require.NotContains(t, f.logs.String(), "xxxxxxxxxx", "bodies are not logged")
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{MaxBodyBytes: 1024})
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		error  string
	}{
		{name: "bad JSON", body: `{"robot":"ops",`, status: http.StatusBadRequest, error: "bad JSON: unexpected EOF"},
		{name: "not JSON", body: `robot=ops&text=hi`, status: http.StatusBadRequest, error: "bad JSON: invalid character"},
		{name: "empty body", body: ``, status: http.StatusBadRequest, error: "bad JSON: empty body"},
		{name: "array", body: `[1]`, status: http.StatusBadRequest, error: "bad JSON: the body must be a JSON object"},
		{name: "trailing data", body: `{"robot":"ops","text":"hi"} {}`, status: http.StatusBadRequest, error: "bad JSON: data after the object"},
		{name: "too large", body: `{"robot":"ops","text":"` + strings.Repeat("x", 1024) + `"}`,
			status: http.StatusRequestEntityTooLarge, error: "request body larger than 1024 bytes"},
		{name: "too large fan-out", path: "/v1/fanout", body: `{"robots":["ops"],"text":"` + strings.Repeat("x", 1024) + `"}`,
			status: http.StatusRequestEntityTooLarge, error: "request body larger than 1024 bytes"},
		{name: "too large batch", path: "/v1/messages:batch", body: strings.Repeat(`{"robot":"ops","text":"hi"}`+"\n", 50),
			status: http.StatusRequestEntityTooLarge, error: "request body larger than 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = "/v1/messages"
			}
			r := f.post(t, path, tt.body)
			require.Equal(t, tt.status, r.status, "body %s", r.body)
			require.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"))
			msg, _ := r.errBody(t)
			require.True(t, strings.HasPrefix(msg, tt.error), "error %q does not start with %q", msg, tt.error)
		})
	}
	r := f.do(t, http.MethodGet, "/v1/messages", "")
	require.Equal(t, http.StatusMethodNotAllowed, r.status)
	r = f.do(t, http.MethodPost, "/v2/messages", "{}")
	require.Equal(t, http.StatusNotFound, r.status)
	require.Zero(t, f.count(t))
}

func TestAuth(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{Tokens: []string{"tok-one-S3cret", "tok-two-S3cret"}})
	body := `{"robot":"ops","text":"hi"}`
	tests := []struct {
		name          string
		authorization string
		status        int
		challenge     string
	}{
		{name: "missing", status: http.StatusUnauthorized, challenge: `Bearer realm="botrelay"`},
		{name: "other scheme", authorization: "Basic dG9rLW9uZS1TM2NyZXQ6", status: http.StatusUnauthorized, challenge: `Bearer realm="botrelay"`},
		{name: "empty bearer", authorization: "Bearer ", status: http.StatusUnauthorized, challenge: `Bearer realm="botrelay"`},
		{name: "wrong", authorization: "Bearer tok-one-S3cre", status: http.StatusUnauthorized, challenge: `Bearer realm="botrelay", error="invalid_token"`},
		{name: "wrong, longer", authorization: "Bearer tok-one-S3cretX", status: http.StatusUnauthorized, challenge: `Bearer realm="botrelay", error="invalid_token"`},
		{name: "first token", authorization: "Bearer tok-one-S3cret", status: http.StatusAccepted},
		{name: "second token, lower-case scheme", authorization: "bearer tok-two-S3cret", status: http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.authorization != "" {
				hdr = []string{"Authorization", tt.authorization}
			}
			for _, path := range []string{"/v1/messages", "/v1/fanout", "/v1/messages:batch"} {
				b := body
				if path == "/v1/fanout" {
					b = `{"robots":["ops"],"text":"hi"}`
				}
				r := f.post(t, path, b, hdr...)
				require.Equal(t, tt.status, r.status, "%s: body %s", path, r.body)
				require.Equal(t, tt.challenge, r.header.Get("WWW-Authenticate"), path)
			}
		})
	}
	require.EqualValues(t, 2*3, f.count(t), "only the authenticated requests published")
	for _, path := range []string{"/healthz", "/readyz"} {
		require.Equal(t, http.StatusOK, f.do(t, http.MethodGet, path, "").status, "%s needs no token", path)
	}
	require.NotContains(t, f.logs.String(), "S3cret", "tokens are not logged")
}

func TestAllowList(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{Robots: []string{"ops", "dev"}})
	accepted(t, f.post(t, "/v1/messages", `{"robot":"dev","text":"hi"}`))

	r := f.post(t, "/v1/messages", `{"robot":"opps","text":"hi"}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	_, problems := r.errBody(t)
	require.Equal(t, []string{`robot: unknown robot "opps": not a robot this gateway accepts`}, problems)

	r = f.post(t, "/v1/fanout", `{"robots":["ops","opps"],"text":"hi"}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	_, problems = r.errBody(t)
	require.Equal(t, []string{`robots[1]: unknown robot "opps": not a robot this gateway accepts`}, problems)

	r = f.post(t, "/v1/messages:batch", `{"robot":"ops","text":"hi"}`+"\n"+`{"robot":"opps","text":"hi"}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	_, problems = r.errBody(t)
	require.Equal(t, []string{`line 2: robot: unknown robot "opps": not a robot this gateway accepts`}, problems)
	require.EqualValues(t, 1, f.count(t))
}

func multi(t *testing.T, r response, status int) gateway.MultiResponse {
	t.Helper()
	require.Equal(t, status, r.status, "body %s", r.body)
	var m gateway.MultiResponse
	require.NoError(t, json.Unmarshal(r.body, &m))
	return m
}

func TestFanOut(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{})
	body := `{"robots":["ops","dev","sre"],"markdown":{"title":"Deploy","text":"v1.2 is live"},"labels":{"app":"shop"}}`
	m := multi(t, f.post(t, "/v1/fanout", body, "Idempotency-Key", "deploy-12"), http.StatusAccepted)
	require.Equal(t, gateway.MultiResponse{ID: "deploy-12", Stored: 3, Results: []gateway.Result{
		{ID: "deploy-12.ops", Robot: "ops", Sequence: 1},
		{ID: "deploy-12.dev", Robot: "dev", Sequence: 2},
		{ID: "deploy-12.sre", Robot: "sre", Sequence: 3},
	}}, m)
	for _, res := range m.Results {
		got := f.stored(t, res.Robot, res.Sequence)
		require.Equal(t, &envelope.Envelope{V: 1, ID: res.ID, Robot: res.Robot, CreatedAt: now,
			Message: envelope.Message{Markdown: &envelope.Markdown{Title: "Deploy", Text: "v1.2 is live"}},
			Labels:  map[string]string{"app": "shop"}}, got)
	}

	// A retry is deduplicated copy by copy.
	m = multi(t, f.post(t, "/v1/fanout", body, "Idempotency-Key", "deploy-12"), http.StatusAccepted)
	require.Equal(t, 3, m.Stored)
	for i, res := range m.Results {
		require.True(t, res.Duplicate, res.Robot)
		require.EqualValues(t, i+1, res.Sequence)
	}
	require.EqualValues(t, 3, f.count(t))

	// Without an id, a fresh base id.
	m = multi(t, f.post(t, "/v1/fanout", `{"robots":["ops"],"text":"hi"}`), http.StatusAccepted)
	require.Len(t, m.ID, 26)
	require.Equal(t, m.ID+".ops", m.Results[0].ID)

	invalidTests := []struct {
		name string
		body string
		want []string
	}{
		{name: "no robots", body: `{"text":"hi"}`, want: []string{"robots: at least one robot required"}},
		{name: "robot instead of robots", body: `{"robot":"ops","text":"hi"}`,
			want: []string{"robot: not used by a fan-out", "robots: at least one robot required"}},
		{name: "duplicate and bad robots", body: `{"robots":["ops","a b","ops"],"text":"hi"}`,
			want: []string{"robots[1]: invalid character", "robots[2]: duplicate of robots[0]"}},
		{name: "bad message", body: `{"robots":["ops"],"markdown":{"text":"x"}}`, want: []string{"message.markdown.title: required"}},
		{name: "too many robots", body: `{"robots":["r` + strings.Repeat(`","r`, gateway.MaxFanOut) + `"],"text":"hi"}`,
			want: []string{"robots: 101 robots, limit 100", "robots[1]: duplicate of robots[0]"}},
	}
	for _, tt := range invalidTests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.post(t, "/v1/fanout", tt.body)
			require.Equal(t, http.StatusUnprocessableEntity, r.status, "body %s", r.body)
			_, problems := r.errBody(t)
			require.GreaterOrEqual(t, len(problems), len(tt.want), "problems %q", problems)
			for i, p := range tt.want {
				require.True(t, strings.HasPrefix(problems[i], p), "problem %d: %q does not start with %q", i, problems[i], p)
			}
		})
	}
	require.EqualValues(t, 4, f.count(t))
}

// limitStream sets an operator's MaxMsgs on the outbound stream (kept by
// Ensure; the stream discards new messages beyond it).
func (f *fixture) limitStream(t *testing.T, maxMsgs int64) {
	t.Helper()
	ctx := context.Background()
	s, err := f.js.Stream(ctx, f.topo.OutStream())
	require.NoError(t, err)
	cfg := s.CachedInfo().Config
	cfg.MaxMsgs = maxMsgs
	_, err = f.js.UpdateStream(ctx, cfg)
	require.NoError(t, err)
}

func TestFanOutPartialFailure(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{})
	// An operator's limit on the stream (kept by Ensure; the stream
	// discards new messages) makes the third copy fail.
	f.limitStream(t, 2)

	r := f.post(t, "/v1/fanout", `{"robots":["ops","dev","sre"],"text":"hi"}`, "Idempotency-Key", "n-1")
	m := multi(t, r, http.StatusBadGateway)
	require.Equal(t, "5", r.header.Get("Retry-After"))
	require.Equal(t, 2, m.Stored)
	require.Equal(t, 1, m.Failed)
	require.Equal(t, gateway.Result{ID: "n-1.ops", Robot: "ops", Sequence: 1}, m.Results[0])
	require.Equal(t, gateway.Result{ID: "n-1.dev", Robot: "dev", Sequence: 2}, m.Results[1])
	require.Equal(t, "n-1.sre", m.Results[2].ID)
	require.Zero(t, m.Results[2].Sequence)
	require.Contains(t, m.Results[2].Error, "maximum messages exceeded")

	// Nothing stored at all: 503.
	r = f.post(t, "/v1/fanout", `{"robots":["a","b"],"text":"hi"}`)
	m = multi(t, r, http.StatusServiceUnavailable)
	require.Equal(t, "5", r.header.Get("Retry-After"))
	require.Equal(t, 2, m.Failed)
}

func TestBatch(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{})
	body := `{"robot":"ops","id":"b-1","text":"one"}` + "\n\n" + `{"robot":"dev","id":"b-2","markdown":{"title":"t","text":"two"}}` + "\n"
	m := multi(t, f.post(t, "/v1/messages:batch", body), http.StatusAccepted)
	require.Equal(t, gateway.MultiResponse{Stored: 2, Results: []gateway.Result{
		{ID: "b-1", Robot: "ops", Sequence: 1},
		{ID: "b-2", Robot: "dev", Sequence: 2},
	}}, m)
	require.Equal(t, "one", f.stored(t, "ops", 1).Message.Text.Content)
	require.Equal(t, "two", f.stored(t, "dev", 2).Message.Markdown.Text)

	m = multi(t, f.post(t, "/v1/messages:batch", body), http.StatusAccepted)
	require.True(t, m.Results[0].Duplicate && m.Results[1].Duplicate, "a retried batch with ids is deduplicated")

	tests := []struct {
		name   string
		body   string
		header []string
		status int
		want   []string
	}{
		{name: "invalid lines", body: `{"robot":"ops","text":"fine"}` + "\n" + `{"text":"x"}` + "\n" + `{"robot":"ops","text":"x","foo":1}`,
			status: http.StatusUnprocessableEntity, want: []string{"line 2: robot: required", "line 3: foo: unknown field"}},
		{name: "malformed line", body: `{"robot":"ops","text":"fine"}` + "\n" + `{"robot":`, status: http.StatusBadRequest},
		{name: "empty", body: "\n\n", status: http.StatusUnprocessableEntity, want: []string{"batch: no messages"}},
		{name: "idempotency key", body: `{"robot":"ops","text":"fine"}`, header: []string{"Idempotency-Key", "k"},
			status: http.StatusUnprocessableEntity, want: []string{"Idempotency-Key header: not used by a batch"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.post(t, "/v1/messages:batch", tt.body, tt.header...)
			require.Equal(t, tt.status, r.status, "body %s", r.body)
			msg, problems := r.errBody(t)
			if tt.status == http.StatusBadRequest {
				require.True(t, strings.HasPrefix(msg, "line 2: bad JSON"), msg)
			}
			require.Len(t, problems, len(tt.want), "problems %q", problems)
			for i, p := range tt.want {
				require.True(t, strings.HasPrefix(problems[i], p), "problem %d: %q does not start with %q", i, problems[i], p)
			}
		})
	}
	require.EqualValues(t, 2, f.count(t), "a batch with a bad line publishes nothing")
}

func TestNATSDown(t *testing.T) {
	ns := testenv.StartNATS(t) // private: this test stops it
	nc, js := testenv.Connect(t, ns.ClientURL())
	// Not testenv.Topology: its cleanup would wait for the stopped server.
	topo := stream.Topology{Prefix: "down" + testenv.Unique()}
	f := serve(t, js, topo, gateway.Options{Ready: nc.IsConnected}, publisher.WithDefaultTimeout(300*time.Millisecond))
	accepted(t, f.post(t, "/v1/messages", `{"robot":"ops","text":"hi"}`))
	r := f.do(t, http.MethodGet, "/readyz", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "ok\n", string(r.body))

	ns.Shutdown()
	ns.WaitForShutdown()
	testenv.Eventually(t, 5*time.Second, func() bool {
		return f.do(t, http.MethodGet, "/readyz", "").status == http.StatusServiceUnavailable
	}, "readyz never reported the lost connection")
	require.Equal(t, http.StatusOK, f.do(t, http.MethodGet, "/healthz", "").status, "still live")

	r = f.post(t, "/v1/messages", `{"robot":"ops","text":"hi"}`, "Idempotency-Key", "k-1")
	require.Equal(t, http.StatusServiceUnavailable, r.status, "body %s", r.body)
	require.Equal(t, "5", r.header.Get("Retry-After"))
	msg, _ := r.errBody(t)
	require.True(t, strings.HasPrefix(msg, "message not stored, retry later: "), msg)
	require.Contains(t, f.logs.String(), "message not stored")

	r = f.post(t, "/v1/fanout", `{"robots":["ops","dev"],"text":"hi"}`)
	m := multi(t, r, http.StatusServiceUnavailable)
	require.Equal(t, "5", r.header.Get("Retry-After"))
	require.Equal(t, 2, m.Failed)
	require.NotEmpty(t, m.Results[0].Error)
}

func TestHealth(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{Ready: func() bool { return false }})
	r := f.do(t, http.MethodGet, "/healthz", "")
	require.Equal(t, http.StatusOK, r.status)
	r = f.do(t, http.MethodGet, "/readyz", "")
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	require.Equal(t, "nats: not connected\n", string(r.body))
}
