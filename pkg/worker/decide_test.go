package worker

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
)

func testPolicy() policy {
	return policy{
		maxAttempts: 3, maxElapsed: time.Hour, maxThrottles: 2, maxDelay: 5 * time.Minute, maxNotSent: 3,
		coolOff: 10 * time.Minute, holdMax: 10 * time.Second,
		backoff: func(failures int) time.Duration { return time.Duration(failures) * time.Second },
	}
}

func inPool(p *policy) { p.pool = true }

// The whole outcome → action table of one request, on one screen.
func TestDecideAfter(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	at := t0.Add(time.Minute)
	tests := []struct {
		name    string
		pol     func(*policy)
		res     delivery.Result
		st      ledger.State // after recording res
		notSent int
		want    action
	}{
		{name: "success acks", res: delivery.Result{Outcome: delivery.Success},
			want: action{verb: doAck, event: "delivered"}},
		{name: "not sent goes again", res: delivery.Result{Outcome: delivery.NotSent}, notSent: 1,
			want: action{verb: doAgain, event: "not_sent"}},
		{name: "not sent the third time is a failed attempt", res: delivery.Result{Outcome: delivery.NotSent, Reason: "slow"}, notSent: 3,
			st: ledger.State{Failures: 1, FirstAttempt: at}, want: action{verb: doRetry, delay: time.Second, event: "retry"}},
		{name: "retryable backs off", res: delivery.Result{Outcome: delivery.Retryable}, st: ledger.State{Failures: 2, FirstAttempt: t0},
			want: action{verb: doRetry, delay: 2 * time.Second, event: "retry"}},
		{name: "retryable honours a longer Retry-After", res: delivery.Result{Outcome: delivery.Retryable, RetryAfter: 30 * time.Second},
			st: ledger.State{Failures: 1, FirstAttempt: t0}, want: action{verb: doRetry, delay: 30 * time.Second, event: "retry"}},
		{name: "retryable caps Retry-After", res: delivery.Result{Outcome: delivery.Retryable, RetryAfter: 1e9 * time.Second},
			st: ledger.State{Failures: 1, FirstAttempt: t0}, want: action{verb: doRetry, delay: 5 * time.Minute, event: "retry"}},
		{name: "attempts spent", res: delivery.Result{Outcome: delivery.Retryable, Reason: "HTTP 503"}, st: ledger.State{Failures: 3, FirstAttempt: t0},
			want: action{verb: doDeadLetter, reason: deadletter.ReasonExhausted, detail: "gave up after 3 attempts: HTTP 503", event: "dead_letter"}},
		{name: "time spent", pol: func(p *policy) { p.maxElapsed = 30 * time.Second }, res: delivery.Result{Outcome: delivery.Retryable, Reason: "x"},
			st: ledger.State{Failures: 1, FirstAttempt: t0}, want: action{verb: doDeadLetter, reason: deadletter.ReasonExhausted, detail: "gave up after 1 attempts: x", event: "dead_letter"}},
		{name: "waits do not spend time", pol: func(p *policy) { p.maxElapsed = 30 * time.Second }, res: delivery.Result{Outcome: delivery.Retryable},
			st: ledger.State{Failures: 1, FirstAttempt: t0, Waited: 40 * time.Second}, want: action{verb: doRetry, delay: time.Second, event: "retry"}},
		{name: "throttled with a long cool-off waits in JetStream", res: delivery.Result{Outcome: delivery.Throttled}, st: ledger.State{Throttles: 1},
			want: action{verb: doWait, delay: 10 * time.Minute, event: "throttled"}},
		{name: "throttled with a short cool-off is held", pol: func(p *policy) { p.coolOff = time.Second }, res: delivery.Result{Outcome: delivery.Throttled},
			st: ledger.State{Throttles: 1}, want: action{verb: doAgain, event: "throttled"}},
		{name: "throttled too often", res: delivery.Result{Outcome: delivery.Throttled, Reason: "send too fast"}, st: ledger.State{Throttles: 2},
			want: action{verb: doDeadLetter, reason: deadletter.ReasonThrottled, detail: "throttled 2 times, last: send too fast", event: "dead_letter"}},
		{name: "platform wait", res: delivery.Result{Outcome: delivery.Wait, RetryAfter: 7 * time.Second}, st: ledger.State{Throttles: 1},
			want: action{verb: doWait, delay: 7 * time.Second, event: "throttled"}},
		{name: "platform wait capped", res: delivery.Result{Outcome: delivery.Wait, RetryAfter: time.Duration(1<<62 - 1)}, st: ledger.State{Throttles: 1},
			want: action{verb: doWait, delay: 5 * time.Minute, event: "throttled"}},
		{name: "platform wait too often", res: delivery.Result{Outcome: delivery.Wait, Reason: "quota"}, st: ledger.State{Throttles: 2},
			want: action{verb: doDeadLetter, reason: deadletter.ReasonThrottled, detail: "throttled 2 times, last: quota", event: "dead_letter"}},
		{name: "permanent", res: delivery.Result{Outcome: delivery.Permanent, Reason: "sign not match"},
			want: action{verb: doDeadLetter, reason: deadletter.ReasonPermanent, detail: "sign not match", event: "dead_letter"}},
		{name: "unclassified is permanent", res: delivery.Result{Reason: "?"},
			want: action{verb: doDeadLetter, reason: deadletter.ReasonPermanent, detail: "?", event: "dead_letter"}},
		// A request to a member of a robot pool.
		{name: "pool: success acks", pol: inPool, res: delivery.Result{Outcome: delivery.Success},
			want: action{verb: doAck, event: "delivered"}},
		{name: "pool: the member's own failure takes it out, another member goes next", pol: inPool,
			res:  delivery.Result{Outcome: delivery.Permanent, Reason: "robot disabled", ErrCode: 400102},
			want: action{verb: doAgain, memberOut: true, event: "member_out"}},
		{name: "pool: sign not match is the member's", pol: inPool,
			res:  delivery.Result{Outcome: delivery.Permanent, Reason: "sign not match", ErrCode: 310000},
			want: action{verb: doAgain, memberOut: true, event: "member_out"}},
		{name: "pool: the message's failure dead-letters", pol: inPool,
			res:  delivery.Result{Outcome: delivery.Permanent, Reason: "keywords not in content", ErrCode: 310000},
			want: action{verb: doDeadLetter, reason: deadletter.ReasonPermanent, detail: "keywords not in content", event: "dead_letter"}},
		{name: "pool: too long dead-letters", pol: inPool,
			res:  delivery.Result{Outcome: delivery.Permanent, Reason: "message too long", ErrCode: 460101},
			want: action{verb: doDeadLetter, reason: deadletter.ReasonPermanent, detail: "message too long", event: "dead_letter"}},
		{name: "pool: throttled with a long cool-off goes to another member at once", pol: inPool,
			res: delivery.Result{Outcome: delivery.Throttled}, st: ledger.State{Throttles: 1},
			want: action{verb: doAgain, event: "throttled"}},
		{name: "pool: throttled too often still dead-letters", pol: inPool,
			res: delivery.Result{Outcome: delivery.Throttled, Reason: "send too fast"}, st: ledger.State{Throttles: 2},
			want: action{verb: doDeadLetter, reason: deadletter.ReasonThrottled, detail: "throttled 2 times, last: send too fast", event: "dead_letter"}},
		{name: "pool: platform wait waits", pol: inPool, res: delivery.Result{Outcome: delivery.Wait, RetryAfter: 7 * time.Second},
			st: ledger.State{Throttles: 1}, want: action{verb: doWait, delay: 7 * time.Second, event: "throttled"}},
		{name: "pool: retryable backs off", pol: inPool, res: delivery.Result{Outcome: delivery.Retryable},
			st: ledger.State{Failures: 1, FirstAttempt: t0}, want: action{verb: doRetry, delay: time.Second, event: "retry"}},
		{name: "not a pool: a robot's own failure dead-letters", res: delivery.Result{Outcome: delivery.Permanent, Reason: "robot disabled", ErrCode: 400102},
			want: action{verb: doDeadLetter, reason: deadletter.ReasonPermanent, detail: "robot disabled", event: "dead_letter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			if tt.pol != nil {
				tt.pol(&p)
			}
			require.Equal(t, tt.want, p.after(tt.res, tt.st, at, tt.notSent))
		})
	}
}

// What the ledger's answer to the claim made just before a request means.
func TestDecideBefore(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	stored := `{"r":"exhausted","d":"gave up after 3 attempts","e":-1}`
	tests := []struct {
		name   string
		pol    func(*policy)
		claim  ledger.Claim
		st     ledger.State
		want   action
		wantOK bool
	}{
		{name: "claimed", claim: ledger.Claimed, wantOK: true},
		{name: "delivered", claim: ledger.AlreadyDelivered, want: action{verb: doAck, event: "duplicate"}},
		{name: "dead-lettered before", claim: ledger.AlreadyPermanent, st: ledger.State{Permanent: stored},
			want: action{verb: doDeadLetter, reason: deadletter.ReasonExhausted, detail: "gave up after 3 attempts", event: "dead_letter"}},
		{name: "unreadable stored outcome", claim: ledger.AlreadyPermanent, st: ledger.State{Permanent: "old"},
			want: action{verb: doDeadLetter, reason: deadletter.ReasonPermanent, detail: "old", event: "dead_letter"}},
		{name: "held by another worker", claim: ledger.HeldByOther, st: ledger.State{Holder: "w2", HeldUntil: now.Add(3 * time.Second)},
			want: action{verb: doWait, delay: 4 * time.Second, event: "held"}},
		{name: "unknown outcome, repost", claim: ledger.UnknownOutcome, st: ledger.State{Holder: "w2"},
			want: action{verb: doAgain, takeover: true, event: "repost"}},
		{name: "unknown outcome, dead letter", pol: func(p *policy) { p.unknown = DeadLetter }, claim: ledger.UnknownOutcome, st: ledger.State{Holder: "w2"},
			want: action{verb: doDeadLetter, reason: deadletter.ReasonUnknownOutcome, event: "dead_letter",
				detail: "worker w2 died while posting it: the platform may or may not have it (on_unknown_outcome: dead_letter)"}},
		{name: "wait mark ran out: no unknown outcome, even for a dead_letter robot", pol: func(p *policy) { p.unknown = DeadLetter },
			claim: ledger.UnknownOutcome, st: ledger.State{Holder: "w2" + waitMark},
			want: action{verb: doAgain, takeover: true}},
		{name: "attempts spent", claim: ledger.Claimed, st: ledger.State{Failures: 3, FirstAttempt: now},
			want: action{verb: doDeadLetter, reason: deadletter.ReasonExhausted, detail: "gave up after 3 attempts", event: "dead_letter"}},
		{name: "throttles spent", claim: ledger.Claimed, st: ledger.State{Throttles: 2},
			want: action{verb: doDeadLetter, reason: deadletter.ReasonThrottled, detail: "throttled 2 times", event: "dead_letter"}},
		{name: "budget left", claim: ledger.Claimed, st: ledger.State{Failures: 2, FirstAttempt: now, Throttles: 1}, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			if tt.pol != nil {
				tt.pol(&p)
			}
			a, ok := p.before(tt.claim, tt.st, now)
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.want, a)
		})
	}
}

// Each process claims under its own holder, so a restarted process of the
// same name (same host and pid in a container) does not take a dead one's
// in-flight marks for its own.
func TestHolderIsPerProcess(t *testing.T) {
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	snd, err := delivery.New()
	require.NoError(t, err)
	mk := func() *Worker {
		t.Helper()
		w, err := New(js, Config{Name: "pod-1", Robots: []Robot{{Robot: delivery.Robot{Name: "a"}, Limit: limiter.Limit{Max: 1, Window: time.Second}}},
			Sender: snd, Limiter: limiter.NewMemory(nil), Ledger: ledger.NewMemory()})
		require.NoError(t, err)
		return w
	}
	a, b := mk(), mk()
	require.True(t, strings.HasPrefix(a.holder, "pod-1/"), a.holder)
	require.NotEqual(t, a.holder, b.holder)
}

// A failure is forgotten by readiness once it is older than healthMemory
// with none since (a worker without traffic makes no call to clear it).
func TestHealthForgetsOldFailures(t *testing.T) {
	var w Worker
	require.ErrorIs(t, w.Healthy(), errStarting)
	w.started.Store(true)
	w.health.failed(componentLedger, errors.New("OOM command not allowed when used memory > 'maxmemory'"))
	require.ErrorContains(t, w.Healthy(), "ledger refused by an out-of-memory Redis")
	w.health.mu.Lock()
	e := w.health.errs[componentLedger]
	e.last = e.last.Add(-healthMemory)
	w.health.errs[componentLedger] = e
	w.health.mu.Unlock()
	require.NoError(t, w.Healthy())
	w.health.failed(componentDeadLetters, errors.New("maximum messages exceeded"))
	require.ErrorContains(t, w.Healthy(), "dead-letter stream unavailable")
	w.health.ok(componentDeadLetters)
	require.NoError(t, w.Healthy())
}

// A pool with no member left in rotation dead-letters its message with the
// last member's reason.
func TestDecidePoolEmpty(t *testing.T) {
	require.Equal(t, action{verb: doDeadLetter, reason: deadletter.ReasonPermanent, event: "dead_letter",
		detail: "pool oncall: no member left in rotation; last out, oncall-3: robot disabled"},
		poolEmpty("oncall", "oncall-3", "robot disabled"))
}
