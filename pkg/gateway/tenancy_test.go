package gateway_test

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/gateway"
)

// Tokens of the tenancy tests: never in any output.
const (
	tokA = "team-a-S3cret-token"
	tokB = "team-b-S3cret-token"
)

// clock is a settable clock for the gateway.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// limiterFor returns a gateway limiter on the test Redis under a unique prefix.
func limiterFor(t *testing.T) *gateway.Limiter {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	l, err := gateway.NewLimiter(rdb, prefix)
	require.NoError(t, err)
	return l
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func TestTokenScopes(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{Access: []gateway.Token{
		{Name: "team-a", SHA256: sha256.Sum256([]byte(tokA)), Robots: []string{"team-a-*", "ops-alerts"}},
		{Name: "team-b", SHA256: sha256.Sum256([]byte(tokB)), Robots: []string{"team-b-*"}},
	}})
	tests := []struct {
		name     string
		token    string
		path     string
		body     string
		status   int
		problems []string
	}{
		{name: "glob in scope", token: tokA, path: "/v1/messages", body: `{"robot":"team-a-db","text":"hi"}`, status: http.StatusAccepted},
		{name: "name in scope", token: tokA, path: "/v1/messages", body: `{"robot":"ops-alerts","text":"hi"}`, status: http.StatusAccepted},
		{name: "other team's robot", token: tokB, path: "/v1/messages", body: `{"robot":"team-a-db","text":"hi"}`,
			status: http.StatusForbidden, problems: []string{`robot: robot "team-a-db" is outside the scope of token team-b`}},
		{name: "a name is not a prefix", token: tokA, path: "/v1/messages", body: `{"robot":"ops-alerts-2","text":"hi"}`,
			status: http.StatusForbidden, problems: []string{`robot: robot "ops-alerts-2" is outside the scope of token team-a`}},
		{name: "fan-out with one robot outside", token: tokB, path: "/v1/fanout", body: `{"robots":["team-b-1","ops-alerts"],"text":"hi"}`,
			status: http.StatusForbidden, problems: []string{`robots[1]: robot "ops-alerts" is outside the scope of token team-b`}},
		{name: "batch with one line outside", token: tokB, path: "/v1/messages:batch",
			body:   `{"robot":"team-b-1","text":"hi"}` + "\n" + `{"robot":"team-a-1","text":"hi"}`,
			status: http.StatusForbidden, problems: []string{`line 2: robot: robot "team-a-1" is outside the scope of token team-b`}},
		{name: "fan-out in scope", token: tokB, path: "/v1/fanout", body: `{"robots":["team-b-1","team-b-2"],"text":"hi"}`, status: http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.count(t)
			r := f.post(t, tt.path, tt.body, bearer(tt.token)...)
			require.Equal(t, tt.status, r.status, "body %s", r.body)
			if tt.status != http.StatusForbidden {
				return
			}
			msg, problems := r.errBody(t)
			require.Equal(t, "robot outside the token's scope", msg)
			require.Equal(t, tt.problems, problems)
			require.Equal(t, before, f.count(t), "nothing stored")
		})
	}
	require.EqualValues(t, 4, f.count(t))
	logs := f.logs.String()
	require.Contains(t, logs, "token=team-a")
	require.Contains(t, logs, "token=team-b")
	require.NotContains(t, logs, "S3cret", "tokens are not logged")
}

func TestTokenRate(t *testing.T) {
	clk := &clock{t: now}
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{Now: clk.Now, Limiter: limiterFor(t), Access: []gateway.Token{
		{Name: "team-a", SHA256: sha256.Sum256([]byte(tokA)), Rate: 2, Burst: 3},
		{Name: "team-b", SHA256: sha256.Sum256([]byte(tokB))},
	}})
	body := `{"robot":"ops","text":"hi"}`
	for i := range 3 {
		accepted(t, f.post(t, "/v1/messages", body, bearer(tokA)...))
		_ = i
	}
	r := f.post(t, "/v1/messages", body, bearer(tokA)...)
	require.Equal(t, http.StatusTooManyRequests, r.status, "body %s", r.body)
	require.Equal(t, "1", r.header.Get("Retry-After"))
	msg, _ := r.errBody(t)
	require.Equal(t, "token team-a: over its rate of 2 requests per second: retry later", msg)
	// The refusal costs nothing to another token, and checks no body.
	accepted(t, f.post(t, "/v1/messages", body, bearer(tokB)...))
	require.Equal(t, http.StatusTooManyRequests, f.post(t, "/v1/messages", "not json", bearer(tokA)...).status)

	clk.Add(500 * time.Millisecond) // one request's worth at 2/s
	accepted(t, f.post(t, "/v1/messages", body, bearer(tokA)...))
	require.Equal(t, http.StatusTooManyRequests, f.post(t, "/v1/messages", body, bearer(tokA)...).status)
	require.EqualValues(t, 5, f.count(t))
}

func TestTokenQuota(t *testing.T) {
	clk := &clock{t: now}
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{Now: clk.Now, Limiter: limiterFor(t), Access: []gateway.Token{
		{Name: "team-a", SHA256: sha256.Sum256([]byte(tokA)), MaxMessagesPerMinute: 6},
	}})
	batch := `{"robot":"ops","text":"1"}` + "\n" + `{"robot":"ops","text":"2"}` + "\n" + `{"robot":"ops","text":"3"}`
	require.Equal(t, 3, multi(t, f.post(t, "/v1/messages:batch", batch, bearer(tokA)...), http.StatusAccepted).Stored)
	clk.Add(10 * time.Second)
	require.Equal(t, 2, multi(t, f.post(t, "/v1/fanout", `{"robots":["a","b"],"text":"hi"}`, bearer(tokA)...), http.StatusAccepted).Stored)

	// 5 of 6 used: a 3-part split does not fit; it would at 60 s after
	// the batch, when the batch's 3 leave the window.
	split := jsonBody(t, map[string]any{"robot": "ops", "text": longLines(500), "split": true})
	r := f.post(t, "/v1/messages", split, bearer(tokA)...)
	require.Equal(t, http.StatusTooManyRequests, r.status, "body %s", r.body)
	require.Equal(t, "50", r.header.Get("Retry-After"))
	msg, _ := r.errBody(t)
	require.Equal(t, "token team-a: over its quota of 6 messages per minute: retry later", msg)
	accepted(t, f.post(t, "/v1/messages", `{"robot":"ops","text":"one more"}`, bearer(tokA)...))
	require.EqualValues(t, 6, f.count(t))

	// More than a whole minute's quota in one request: 413, never retried.
	seven := strings.Repeat(`{"robot":"ops","text":"x"}`+"\n", 7)
	r = f.post(t, "/v1/messages:batch", seven, bearer(tokA)...)
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status, "body %s", r.body)
	msg, _ = r.errBody(t)
	require.Equal(t, "request holds 7 messages, more than token team-a may store in a minute (6)", msg)

	clk.Add(50 * time.Second) // the batch's 3 left the window
	require.Equal(t, 3, multi(t, f.post(t, "/v1/messages", split, bearer(tokA)...), http.StatusAccepted).Stored)
	require.EqualValues(t, 9, f.count(t))

	// Duplicates store nothing and cost nothing: a retried request with
	// fixed ids is not charged twice. (The window now holds 3 + 1 + 3 = 6.)
	clk.Add(60 * time.Second) // all of it left the window
	withIDs := `{"robot":"ops","id":"q-1","text":"1"}` + "\n" + `{"robot":"ops","id":"q-2","text":"2"}` + "\n" + `{"robot":"ops","id":"q-3","text":"3"}`
	for range 4 {
		require.Equal(t, 3, multi(t, f.post(t, "/v1/messages:batch", withIDs, bearer(tokA)...), http.StatusAccepted).Stored)
	}
	accepted(t, f.post(t, "/v1/messages", `{"robot":"ops","text":"4"}`, bearer(tokA)...))
	accepted(t, f.post(t, "/v1/messages", `{"robot":"ops","text":"5"}`, bearer(tokA)...))
	accepted(t, f.post(t, "/v1/messages", `{"robot":"ops","text":"6"}`, bearer(tokA)...))
	require.Equal(t, http.StatusTooManyRequests, f.post(t, "/v1/messages", `{"robot":"ops","text":"7"}`, bearer(tokA)...).status)
	require.EqualValues(t, 15, f.count(t))

	// Messages the stream refused are given back too.
	f.limitStream(t, 15)
	clk.Add(60 * time.Second)
	for range 3 {
		require.Equal(t, http.StatusServiceUnavailable, f.post(t, "/v1/messages:batch", strings.Repeat(`{"robot":"ops","text":"x"}`+"\n", 6), bearer(tokA)...).status)
	}
}

func TestSetTokens(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{Access: []gateway.Token{{Name: "team-a", SHA256: sha256.Sum256([]byte(tokA))}}})
	body := `{"robot":"ops","text":"hi"}`
	accepted(t, f.post(t, "/v1/messages", body, bearer(tokA)...))
	require.Equal(t, http.StatusUnauthorized, f.post(t, "/v1/messages", body, bearer(tokB)...).status)

	require.NoError(t, f.gw.SetTokens([]gateway.Token{{Name: "team-b", SHA256: sha256.Sum256([]byte(tokB)), Robots: []string{"ops"}}}))
	require.Equal(t, http.StatusUnauthorized, f.post(t, "/v1/messages", body, bearer(tokA)...).status)
	accepted(t, f.post(t, "/v1/messages", body, bearer(tokB)...))

	err := f.gw.SetTokens([]gateway.Token{{Name: "bad name!", SHA256: sha256.Sum256([]byte(tokA))}})
	require.ErrorIs(t, err, gateway.ErrInvalidTokens)
	accepted(t, f.post(t, "/v1/messages", body, bearer(tokB)...)) // kept
	require.ErrorIs(t, f.gw.SetTokens(nil), gateway.ErrInvalidTokens, "no token at all")
}

// Team B's Idempotency-Key must not suppress team A's message to another
// robot: ids are scoped by robot.
func TestIdempotencyKeyOtherTeam(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{Access: []gateway.Token{
		{Name: "team-a", SHA256: sha256.Sum256([]byte(tokA)), Robots: []string{"team-a-*"}},
		{Name: "team-b", SHA256: sha256.Sum256([]byte(tokB)), Robots: []string{"team-b-*"}},
	}})
	b := accepted(t, f.post(t, "/v1/messages", `{"robot":"team-b-sandbox","text":"test"}`, append(bearer(tokB), "Idempotency-Key", "deploy-4711")...))
	require.False(t, b.Duplicate)
	a := f.post(t, "/v1/messages", `{"robot":"team-a-alerts","text":"real alert"}`, append(bearer(tokA), "Idempotency-Key", "deploy-4711")...)
	require.False(t, accepted(t, a).Duplicate, "stored: the same key for another robot is another message")
	require.EqualValues(t, 2, f.count(t))
	require.Equal(t, "real alert", f.stored(t, "team-a-alerts", 2).Message.Text.Content)
}

func TestBoundedAnswers(t *testing.T) {
	robots := make([]string, 2000)
	for i := range robots {
		robots[i] = fmt.Sprintf("configured-robot-%04d", i)
	}
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{Robots: robots})
	var b strings.Builder
	for i := range gateway.MaxBatch {
		fmt.Fprintf(&b, `{"robot":"unknown-%04d","text":"x"}`+"\n", i)
	}
	r := f.post(t, "/v1/messages:batch", b.String())
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Less(t, len(r.body), 16<<10, "1,000 unknown robots: a bounded answer")
	require.NotContains(t, string(r.body), "configured-robot", "the allow-list is never echoed")
	_, problems := r.errBody(t)
	require.Len(t, problems, gateway.MaxProblems)
	require.Equal(t, `line 1: robot: unknown robot "unknown-0000": not a robot this gateway accepts`, problems[0])
	require.Equal(t, "… and 901 more problems", problems[gateway.MaxProblems-1])

	// A large stored batch lists no per-line results, only counts.
	b.Reset()
	for i := range gateway.MaxResults + 1 {
		fmt.Fprintf(&b, `{"robot":"configured-robot-0001","id":"l-%d","text":"x"}`+"\n", i)
	}
	m := multi(t, f.post(t, "/v1/messages:batch", b.String()), http.StatusAccepted)
	require.Equal(t, gateway.MultiResponse{Stored: gateway.MaxResults + 1, Results: []gateway.Result{}, Omitted: gateway.MaxResults + 1}, m)

	// A huge unknown field name is clipped.
	r = f.post(t, "/v1/messages", `{"`+strings.Repeat("k", 100000)+`":1}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Less(t, len(r.body), 1024)
}

func TestStoredSizeLimits(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{})
	labels := func(n, size int, c string) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("k%02d", i)] = strings.Repeat(c, size)
		}
		return m
	}
	robots := make([]string, 16)
	for i := range robots {
		robots[i] = fmt.Sprintf("r%d", i)
	}
	tests := []struct {
		name string
		path string
		body map[string]any
		want []string
	}{
		{name: "label value too long", body: map[string]any{"robot": "ops", "text": "hi", "labels": labels(1, 2000, "x")},
			want: []string{`labels["k00"]: value of 2000 bytes, limit 1024`}},
		{name: "too many labels", body: map[string]any{"robot": "ops", "text": "hi", "labels": labels(33, 1, "x")},
			want: []string{"labels: 33 labels, limit 32"}},
		{name: "escaped labels over the envelope bound", body: map[string]any{"robot": "ops", "text": "hi", "labels": labels(32, 1024, "\x01")},
			want: []string{"envelope: 197034 bytes encoded (labels included), limit 65536"}},
		{name: "too many split parts", body: map[string]any{"robot": "ops", "text": longLines(5000), "split": true},
			want: []string{"message: 26 parts when split, limit 20"}},
		{name: "fan-out × parts", path: "/v1/fanout", body: map[string]any{"robots": robots, "text": longLines(2500), "split": true},
			want: []string{"split: 16 robots × 13 parts = 208 messages, limit 200"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = "/v1/messages"
			}
			r := f.post(t, path, jsonBody(t, tt.body))
			require.Equal(t, http.StatusUnprocessableEntity, r.status, "body %.300s", r.body)
			_, problems := r.errBody(t)
			require.Equal(t, tt.want, problems)
		})
	}
	require.Zero(t, f.count(t))
}
