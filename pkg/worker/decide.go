package worker

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/ledger"
)

// verb is what becomes of a message: the queue action [Worker.apply]
// carries out.
type verb int

const (
	// doAck: settled (delivered, or already delivered); ack.
	doAck verb = iota + 1
	// doAgain: no answer and no attempt (the request was abandoned
	// unwritten, or the lease was taken over); go round again now.
	doAgain
	// doRetry: an attempt failed; NAK with the backoff delay.
	doRetry
	// doWait: not an attempt (a rate slot, a cool-off, the platform's
	// "later", another worker's lease); NAK with the delay, counted as a
	// wait in the ledger.
	doWait
	// doDeadLetter: publish a dead letter with the reason, then ack.
	doDeadLetter
)

func (v verb) String() string {
	switch v {
	case doAck:
		return "ack"
	case doAgain:
		return "again"
	case doRetry:
		return "retry"
	case doWait:
		return "wait"
	case doDeadLetter:
		return "dead_letter"
	}
	return "invalid"
}

// action is a decision: a verb with its delay or its dead-letter reason,
// and the event kind that reports it.
type action struct {
	verb   verb
	delay  time.Duration
	reason deadletter.Reason
	detail string
	event  string
	// takeover, with doAgain, claims the message over a dead holder.
	takeover bool
	// memberOut, with doAgain, takes the pool member that made the request
	// out of rotation: it failed for a reason of its own (see pool.go).
	memberOut bool
}

// policy is what decisions depend on besides the message: the robot's
// and the worker's settings.
type policy struct {
	maxAttempts  int
	maxElapsed   time.Duration
	maxThrottles int
	maxDelay     time.Duration // cap of every server-requested delay
	maxNotSent   int           // abandoned writes in a row before it counts as a failed attempt
	coolOff      time.Duration
	holdMax      time.Duration // the longest wait slept through holding the message
	unknown      UnknownOutcomePolicy
	backoff      func(failures int) time.Duration
	// pool: the request went to a member of a robot pool, which has other
	// members to go to (see pool.go).
	pool bool
}

// before decides, from the ledger's answer to the claim made just before
// a request, whether the request may be made (ok) or what to do instead.
// st is the state the claim saw; now is the worker's clock (the lease is
// timed by the ledger's, so waits for it get a second of slack).
func (p policy) before(c ledger.Claim, st ledger.State, now time.Time) (a action, ok bool) {
	switch c {
	case ledger.AlreadyDelivered:
		return action{verb: doAck, event: "duplicate"}, false
	case ledger.AlreadyPermanent:
		// Dead-lettered before, but the dead letter could not be published:
		// publish it again, with the reason recorded then.
		o := parseOutcome(st.Permanent)
		return action{verb: doDeadLetter, reason: o.Reason, detail: o.Detail, event: "dead_letter"}, false
	case ledger.HeldByOther:
		return action{verb: doWait, delay: min(max(st.HeldUntil.Sub(now), 0)+time.Second, p.maxDelay), event: "held"}, false
	case ledger.UnknownOutcome:
		if strings.HasSuffix(st.Holder, waitMark) {
			// A direct lane's wait mark that ran out (direct.go): the
			// message was waiting, not being posted. Claim it over the mark.
			return action{verb: doAgain, takeover: true}, false
		}
		if p.unknown == DeadLetter {
			return action{verb: doDeadLetter, reason: deadletter.ReasonUnknownOutcome, event: "dead_letter",
				detail: fmt.Sprintf("worker %s died while posting it: the platform may or may not have it (on_unknown_outcome: dead_letter)", st.Holder)}, false
		}
		return action{verb: doAgain, takeover: true, event: "repost"}, false
	}
	if st.Failures > 0 && (st.Failures >= p.maxAttempts || p.elapsed(st, now) >= p.maxElapsed) {
		// Its budget is spent (the dead-letter publish failed before):
		// dead-letter it without posting it again.
		return action{verb: doDeadLetter, reason: deadletter.ReasonExhausted, event: "dead_letter",
			detail: fmt.Sprintf("gave up after %d attempts", st.Failures)}, false
	}
	if st.Throttles >= p.maxThrottles {
		return action{verb: doDeadLetter, reason: deadletter.ReasonThrottled, event: "dead_letter",
			detail: fmt.Sprintf("throttled %d times", st.Throttles)}, false
	}
	return action{}, true
}

// after decides what becomes of a message from one request's result and
// the ledger state after recording it; notSent counts the requests of this
// handling abandoned unwritten in a row (this one included).
func (p policy) after(res delivery.Result, st ledger.State, at time.Time, notSent int) action {
	switch res.Outcome {
	case delivery.Success:
		return action{verb: doAck, event: "delivered"}
	case delivery.NotSent:
		if notSent < p.maxNotSent {
			return action{verb: doAgain, event: "not_sent"}
		}
		return p.failed(res, st, at) // recorded as a failure by [policy.record]
	case delivery.Throttled, delivery.Wait:
		if st.Throttles >= p.maxThrottles {
			return action{verb: doDeadLetter, reason: deadletter.ReasonThrottled, event: "dead_letter",
				detail: fmt.Sprintf("throttled %d times, last: %s", st.Throttles, res.Reason)}
		}
		if res.Outcome == delivery.Throttled && (p.coolOff <= p.holdMax || p.pool) {
			// A short cool-off is waited out in the lane: the limiter
			// holds the next pass until it ends. A pool's next pass goes
			// to the member with the earliest slot, skipping this one.
			return action{verb: doAgain, event: "throttled"}
		}
		return action{verb: doWait, delay: p.waitFor(res), event: "throttled"}
	case delivery.Retryable:
		return p.failed(res, st, at)
	}
	// delivery.Permanent and anything unclassified.
	if p.pool && res.Fault() == delivery.FaultRobot {
		// The member's own failure: another member takes the message, no
		// attempt of the message spent.
		return action{verb: doAgain, memberOut: true, event: "member_out"}
	}
	return action{verb: doDeadLetter, reason: deadletter.ReasonPermanent, detail: res.Reason, event: "dead_letter"}
}

// failed decides after a failed attempt already counted in st.
func (p policy) failed(res delivery.Result, st ledger.State, at time.Time) action {
	if st.Failures >= p.maxAttempts || p.elapsed(st, at) >= p.maxElapsed {
		return action{verb: doDeadLetter, reason: deadletter.ReasonExhausted, event: "dead_letter",
			detail: fmt.Sprintf("gave up after %d attempts: %s", st.Failures, res.Reason)}
	}
	return action{verb: doRetry, delay: max(p.backoff(st.Failures), min(res.RetryAfter, p.maxDelay)), event: "retry"}
}

// waitFor is how long a throttled message, or one the platform asked to
// wait, waits: the robot's cool-off, or the requested delay capped.
func (p policy) waitFor(res delivery.Result) time.Duration {
	if res.Outcome == delivery.Throttled {
		return p.coolOff
	}
	return min(max(res.RetryAfter, time.Second), p.maxDelay)
}

// elapsed is the retry budget's clock: the time since the first failed
// attempt, less the time spent waiting since.
func (p policy) elapsed(st ledger.State, now time.Time) time.Duration {
	if st.FirstAttempt.IsZero() {
		return 0
	}
	return now.Sub(st.FirstAttempt) - st.Waited
}

// retryDelay is the exponential backoff before attempt failures+1.
func (w *Worker) retryDelay(failures int) time.Duration {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     w.cfg.Backoff.Initial,
		RandomizationFactor: w.cfg.Backoff.Jitter,
		Multiplier:          w.cfg.Backoff.Multiplier,
		MaxInterval:         w.cfg.Backoff.Max,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	d := b.InitialInterval
	for range failures {
		d = b.NextBackOff()
	}
	return d
}

// policy returns rb's decision policy.
func (w *Worker) policy(rb *Robot) policy {
	return policy{
		maxAttempts: w.cfg.MaxAttempts, maxElapsed: w.cfg.MaxElapsed, maxThrottles: w.cfg.MaxThrottles,
		maxDelay: w.cfg.Backoff.Max, maxNotSent: maxNotSent, coolOff: rb.CoolOff, holdMax: w.cfg.HoldMax, unknown: rb.OnUnknownOutcome,
		backoff: w.retryDelay,
	}
}

// maxNotSent: a webhook that cannot take a request within the margin this
// many times in a row has failed one attempt (counted, and retried with
// backoff), so an unreachable one ends in the dead-letter stream.
const maxNotSent = 3

// unexplained counts the redeliveries of a message that neither a retry nor
// a wait handed back to JetStream explains: a worker died holding it. With
// the ledger unavailable (zero state) every redelivery counts.
func unexplained(numDelivered uint64, st ledger.State) int {
	return max(int(numDelivered)-1-st.Failures-st.Waits, 0)
}

// outcomeRecord is what the ledger keeps of a dead-lettered message
// ([ledger.Ledger.MarkPermanent]), so a dead letter published again (after
// its first publish failed) keeps its reason and the platform's answer.
type outcomeRecord struct {
	Reason     deadletter.Reason `json:"r"`
	Detail     string            `json:"d,omitempty"`
	Class      string            `json:"c,omitempty"`
	HTTPStatus int               `json:"s,omitempty"`
	ErrCode    int               `json:"e,omitempty"`
	ErrMsg     string            `json:"m,omitempty"`
	Attempts   int               `json:"a,omitempty"`
}

// parseOutcome reads a recorded outcome; an unreadable one (another
// version's) is a permanent failure with the text as detail.
func parseOutcome(s string) outcomeRecord {
	var o outcomeRecord
	if err := json.Unmarshal([]byte(s), &o); err != nil || o.Reason == "" {
		return outcomeRecord{Reason: deadletter.ReasonPermanent, Detail: s}
	}
	return o
}

// poolEmpty decides for a pool's message when no member is left in
// rotation (each failed for a reason of its own): dead-letter it with the
// reason of the member taken out last.
func poolEmpty(pool, last, reason string) action {
	return action{verb: doDeadLetter, reason: deadletter.ReasonPermanent, event: "dead_letter",
		detail: fmt.Sprintf("pool %s: no member left in rotation; last out, %s: %s", pool, last, reason)}
}
