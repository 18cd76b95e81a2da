package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptrace"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/gate"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/stream"
)

// claimSlack is added to the write budget and the request timeout to make
// the in-flight lease: the lease covers the claim's own round trip, the
// wait for a write slot, the limiter's decision, the write deadline and
// the wait for the answer, so a live holder is never taken for dead.
const claimSlack = 2 * time.Second

// writeBudget is how long after its reservation a request may still be
// written: three quarters of the robot's margin (what the limiter adds to
// the window for it), the last quarter left for the written bytes to
// travel (a kernel buffer or a proxy tunnel takes them before the
// platform has them); [DefaultWriteBudget] for a limit without one.
func writeBudget(margin time.Duration) time.Duration {
	if margin > 0 {
		return margin - margin/4
	}
	return DefaultWriteBudget
}

// claimLease is the in-flight lease of a claim made for a request to rb:
// the write budget, the request timeout and [claimSlack].
func (w *Worker) claimLease(rb *Robot) time.Duration {
	return writeBudget(rb.Limit.Margin) + w.cfg.RequestTimeout + claimSlack
}

// DefaultWriteBudget is the write deadline after a reservation for a
// robot whose limit has no Margin. Such a limit does not allow for the
// time a request takes to arrive; config always sets one (5s).
const DefaultWriteBudget = time.Second

// job is one message being handled.
type job struct {
	rb  *Robot
	msg jetstream.Msg
	env *envelope.Envelope
	key string // ledger key, "<robot>/<id>"
	rec deadletter.Record
	// ledgerOK is false when the last ledger call failed: the message is
	// then delivered without the idempotency check (at least once first).
	ledgerOK bool
	notSent  int
	// numDelivered is JetStream's count of deliveries of the message;
	// checked is set once the first claim's state was checked against it.
	numDelivered uint64
	checked      bool
	// res is the last request's result; lastReason its Reason.
	res        delivery.Result
	lastReason string
	// digest, for a digest's job, holds its folded messages (digest.go).
	digest []*dItem
	// repostTo, for a pool message taken over from a worker that died
	// posting it, is the member the ledger has for that request: the
	// repost goes to it (pool.go), until a request is made.
	repostTo string
}

// newJob starts the job of msg for rb, its dead-letter record naming the
// robot, the subject and this worker.
func (w *Worker) newJob(rb *Robot, msg jetstream.Msg) *job {
	return &job{rb: rb, msg: msg, rec: deadletter.Record{Robot: rb.Name, Subject: msg.Subject(), Worker: w.cfg.Name}}
}

func (j *job) id() string {
	if j.env == nil {
		return ""
	}
	return j.env.ID
}

// handle takes one message to an outcome. runCtx stops waits; in-flight
// HTTP requests and acks use a context that outlives it. ackWait is the
// consumer's, which sets the heartbeat, started before anything else;
// refresh, when set, has the heartbeat refresh c's info first. It returns
// the decision it carried out (the lane stays while a message it handed
// back is due).
func (w *Worker) handle(runCtx context.Context, rb *Robot, msg jetstream.Msg, c jetstream.Consumer, ackWait time.Duration, refresh func()) (a action) {
	stop := w.heartbeat(msg, c, ackWait, refresh)
	defer stop()
	ctx := context.WithoutCancel(runCtx)
	j := w.newJob(rb, msg)
	defer func() {
		if p := recover(); p != nil {
			w.recovered(ctx, j, p)
		}
	}()
	a = w.run(runCtx, ctx, j)
	// No InProgress may follow the ack or NAK: it would undo a delayed NAK.
	stop()
	w.apply(ctx, j, a)
	return a
}

// recovered dead-letters the message whose handling panicked (reason
// panic; the stack goes to the log, not the record), so one bad message
// neither takes the worker down nor comes back until the crash-loop guard.
func (w *Worker) recovered(ctx context.Context, j *job, p any) {
	w.m.panics.Inc()
	w.log.Error("panic while handling a message; dead-lettering it", "robot", j.rb.Name, "id", j.id(),
		"panic", w.redact(j.rb, fmt.Sprint(p)), "stack", w.redact(j.rb, string(debug.Stack())))
	defer func() {
		if p2 := recover(); p2 != nil {
			w.log.Error("panic while dead-lettering a message that panicked; it comes back (after AckWait, or at a direct lane's next read)", "robot", j.rb.Name, "id", j.id())
		}
	}()
	if j.key != "" && j.ledgerOK {
		_ = w.cfg.Ledger.Release(ctx, j.key, w.holder)
	}
	if j.rec.Envelope == nil && j.rec.Raw == nil {
		j.rec.Raw = j.msg.Data() // it panicked before it was decoded: keep the payload
	}
	w.apply(ctx, j, action{verb: doDeadLetter, reason: deadletter.ReasonPanic, event: "dead_letter",
		detail: "the worker's code panicked while handling it; the stack is in the worker's log"})
}

// redact removes the robot's credentials from s.
func (w *Worker) redact(rb *Robot, s string) string { return delivery.Scrub(rb.Robot, s) }

// run decides what becomes of j's message, making the request when the
// checks allow; it returns the decision for [Worker.apply].
func (w *Worker) run(runCtx, ctx context.Context, j *job) action {
	rb, msg := j.rb, j.msg
	md, err := msg.Metadata()
	if err != nil {
		// Not a JetStream message as delivered by a consumer: keep what it
		// carries, then take it out of the stream.
		j.rec.Raw = msg.Data()
		return action{verb: doDeadLetter, reason: deadletter.ReasonDecode, event: "dead_letter",
			detail: "message without JetStream metadata: " + err.Error()}
	}
	j.rec.Sequence = md.Sequence.Stream
	env, err := envelope.Decode(msg.Data())
	if err != nil {
		j.rec.Raw = msg.Data()
		return action{verb: doDeadLetter, reason: deadletter.ReasonDecode, detail: err.Error(), event: "dead_letter"}
	}
	j.env, j.rec.Envelope = env, env
	if env.Robot != rb.Name {
		return action{verb: doDeadLetter, reason: deadletter.ReasonUnknownRobot, event: "dead_letter",
			detail: fmt.Sprintf("envelope addressed to robot %q arrived on robot %q's subject", env.Robot, rb.Name)}
	}
	if rb.Replies {
		if a, ok := w.replyTarget(ctx, j); !ok {
			return a
		}
		rb = j.rb
	}
	j.key = ledgerKey(rb.Name, msg, env)
	pol := w.policy(rb)
	j.numDelivered = md.NumDelivered
	j.ledgerOK = true // until a ledger call fails
	if err := delivery.CheckKeywords(rb.Robot, env); err != nil {
		return action{verb: doDeadLetter, reason: deadletter.ReasonMissingKeyword, detail: err.Error(), event: "dead_letter"}
	}
	takeover := false
	for {
		if env.Expired(time.Now()) {
			if a, ok := w.expiredElsewhere(ctx, j, pol); ok {
				return a
			}
			return action{verb: doDeadLetter, reason: deadletter.ReasonExpired, event: "dead_letter",
				detail: "expired at " + env.ExpiresAt.Format(time.RFC3339) + " before it could be posted"}
		}
		a, sent := w.attempt(runCtx, ctx, j, pol, takeover)
		if a.verb != doAgain {
			return a
		}
		if a.event != "" {
			w.observe(Event{Robot: rb.Name, EnvelopeID: env.ID, Kind: a.event, Attempts: j.rec.Attempts, Result: j.res})
		}
		takeover = !sent && a.takeover
	}
}

// attempt makes one pass: the claim, a write slot, the limiter's decision
// and, when all allow, the request. sent reports whether a request was
// made (written or abandoned).
func (w *Worker) attempt(runCtx, ctx context.Context, j *job, pol policy, takeover bool) (a action, sent bool) {
	if p := w.poolOf(j.rb.Name); p != nil {
		return w.poolAttempt(runCtx, ctx, j, p, takeover) // pool.go: a member makes this attempt
	}
	rb := j.rb
	sem := w.sem(rb.Name)
	select {
	case sem <- struct{}{}:
	case <-runCtx.Done():
		return action{verb: doWait, event: "handed_back"}, false
	}
	var once sync.Once
	release := func() { once.Do(func() { <-sem }) }
	defer release()

	// The ledger check comes before the reservation: nothing slow may sit
	// between a granted slot and the write. With the ledger and the
	// limiter on one Redis, both are one script: one round trip.
	claimStart := time.Now()
	lease := w.claimLease(rb)
	claimed := false
	member := "" // recorded with a pool message's claim: the member posting it
	if pol.pool {
		member = rb.Name
	}
	// checkClaim decides on the claim's answer: whether the request may be
	// made, or what to do instead.
	checkClaim := func(c ledger.Claim, st ledger.State) (action, bool) {
		j.fromState(st)
		if a, ok := pol.before(c, st, time.Now()); !ok {
			if a.event == "repost" {
				w.countRepost(ctx, j) // direct lanes (direct.go)
				j.repostTo = st.Member
			}
			return a, false
		}
		if !j.checked {
			// Without the ledger, retries and waits cannot be told from
			// crashes: this guard waits for it.
			j.checked = true
			if lost := unexplained(j.numDelivered, st); lost > w.cfg.MaxRedeliveries {
				return action{verb: doDeadLetter, reason: deadletter.ReasonRedelivered, event: "dead_letter",
					detail: fmt.Sprintf("handed out %d times without an outcome", lost+1)}, false
			}
		}
		return action{}, true
	}
	var (
		reserveStart time.Time
		granted      bool
		wait         time.Duration
		stopped      bool
		decided      bool // the limiter decided in the claim's script
		claimDone    bool // the claim was made in that script
	)
	if g := gate.New(w.cfg.Ledger, w.cfg.Limiter); g != nil && pol.maxThrottles > 0 {
		// The script reserves only when the claim's state cannot stop the
		// request (pol.before, the redelivery guard): no failed attempt
		// recorded, fewer throttles than the limit, enough waits to explain
		// every redelivery. Otherwise checkClaim decides first, and the
		// limiter is asked after, as with two calls.
		minWaits := 0
		if !j.checked {
			minWaits = int(j.numDelivered) - 1 - w.cfg.MaxRedeliveries
		}
		reserveStart = time.Now()
		r, err := g.ClaimReserve(ctx, gate.Request{Key: j.key, Holder: w.holder, Member: member, Lease: lease, Takeover: takeover,
			Robot: rb.limitKey(), Limit: rb.Limit, HoldMax: w.cfg.HoldMax, MaxThrottles: pol.maxThrottles, MinWaits: minWaits})
		switch {
		case err != nil && isOutOfMemory(err):
			// Redis is full: nothing could be recorded. Fail closed: hold
			// the message until Redis has room.
			w.ledgerResult(err, rb, j.id(), "claiming")
			release()
			if !sleep(runCtx, time.Second) {
				return action{verb: doWait, event: "handed_back"}, false
			}
			return action{verb: doAgain}, false
		case gate.Fallback(err):
			// The script did not run for a reason of these keys: the two
			// calls below tell which part fails.
		case err != nil:
			// Redis unreachable: neither the claim nor the limiter
			// answered. Deliver without the idempotency check once Redis
			// is back; the limiter fails closed meanwhile.
			claimDone, decided = true, true
			j.ledgerOK = w.ledgerResult(err, rb, j.id(), "claiming")
			if stopped = runCtx.Err() != nil; !stopped {
				w.health.failed(componentLimiter, err)
				w.m.limiterErrors.Inc()
				w.log.Error("limiter unavailable; holding messages", "robot", rb.Name, "err", err)
				wait = 500 * time.Millisecond
			}
		default:
			claimDone = true
			j.ledgerOK = w.ledgerResult(nil, rb, j.id(), "claiming")
			if a, ok := checkClaim(r.Claim, r.State); !ok {
				if r.Reserved && r.Decision.Allowed {
					// Not expected (the bounds exclude it): the slot goes
					// unused, which never exceeds a limit.
					w.log.Warn("a slot reserved with the claim went unused", "robot", rb.Name, "id", j.id(), "event", a.event)
				}
				return a, false
			}
			claimed = true
			if r.Reserved {
				decided, granted = true, r.Decision.Allowed
				w.health.ok(componentLimiter)
				if !granted {
					w.m.limiterWaits.WithLabelValues(rb.Name).Inc()
					wait = r.Decision.RetryAfter
					claimed = !r.Released // a short wait's release was in the script
				}
			}
		}
	}
	if !claimDone {
		var (
			c   ledger.Claim
			st  ledger.State
			err error
		)
		if mc, ok := w.cfg.Ledger.(ledger.MemberClaimer); ok && member != "" {
			c, st, err = mc.ClaimMember(ctx, j.key, w.holder, member, lease, takeover)
		} else {
			c, st, err = w.cfg.Ledger.Claim(ctx, j.key, w.holder, lease, takeover)
		}
		if err != nil && isOutOfMemory(err) {
			// Redis is full: the limiter may still grant (a script that
			// already wrote may write on), but nothing could be recorded.
			// Fail closed: hold the message until Redis has room.
			w.ledgerResult(err, rb, j.id(), "claiming")
			release()
			if !sleep(runCtx, time.Second) {
				return action{verb: doWait, event: "handed_back"}, false
			}
			return action{verb: doAgain}, false
		}
		j.ledgerOK = w.ledgerResult(err, rb, j.id(), "claiming")
		if j.ledgerOK {
			if a, ok := checkClaim(c, st); !ok {
				return a, false
			}
			claimed = true
		}
	}
	if !decided {
		reserveStart = time.Now()
		granted, wait, stopped = w.reserve(runCtx, rb)
	}
	if !granted {
		release()
		if stopped {
			return action{verb: doWait, event: "handed_back"}, false
		}
		// A repost through the member a dead worker posted it through
		// waits for that member's window here, however long (a window's
		// wait, not a cool-off): handed back, the next reading would not
		// know the member, and another would post it twice in the group.
		repostWait := j.repostTo != "" && wait <= rb.Limit.Window+rb.Limit.Margin
		if wait > w.cfg.HoldMax && !repostWait {
			return action{verb: doWait, delay: wait, event: "deferred"}, false
		}
		// A short wait is slept through holding the message; the claim is
		// given up meanwhile, so a crash now is no unknown outcome.
		if claimed {
			w.ledgerResult(w.cfg.Ledger.Release(ctx, j.key, w.holder), rb, j.id(), "releasing")
		}
		if !sleep(runCtx, wait+jitter(wait)) {
			return action{verb: doWait, event: "handed_back"}, false
		}
		return action{verb: doAgain}, false
	}
	writeBy := reserveStart.Add(writeBudget(rb.Limit.Margin))
	if claimed {
		writeBy = minTime(writeBy, claimStart.Add(lease))
	}
	// The write slot is given back as soon as the request is written: the
	// wait for the answer holds nothing another robot needs.
	dctx := delivery.WithWriteDeadline(ctx, writeBy)
	var wrote atomic.Bool
	dctx = httptrace.WithClientTrace(dctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true); release() },
	})
	start := time.Now()
	res := w.cfg.Sender.Deliver(dctx, rb.Robot, j.env)
	release()
	w.m.latency.WithLabelValues(rb.Name).Observe(time.Since(start).Seconds())
	w.m.deliveries.WithLabelValues(rb.Name, res.Outcome.String()).Inc()
	if res.Outcome == delivery.NotSent {
		j.notSent++
	} else {
		j.notSent = 0
	}
	unanswered := wrote.Load() && res.Outcome == delivery.Retryable && res.HTTPStatus == 0
	if unanswered && pol.unknown == DeadLetter {
		// Written, never answered: the platform may have it. For a robot
		// where a duplicate is worse than a gap, that is an unknown outcome.
		j.setResult(res, start)
		return action{verb: doDeadLetter, reason: deadletter.ReasonUnknownOutcome, event: "dead_letter",
			detail: "the request was written but never answered (" + res.Reason + "): the platform may or may not have it (on_unknown_outcome: dead_letter)"}, true
	}
	st := w.record(ctx, j, res, pol, start)
	j.setResult(res, start)
	return pol.after(res, st, start, j.notSent), true
}

// record writes a request's result to the ledger (and a throttle to the
// limiter) and returns the state the decision is made on.
func (w *Worker) record(ctx context.Context, j *job, res delivery.Result, pol policy, at time.Time) ledger.State {
	rb, l, me := j.rb, w.cfg.Ledger, w.holder
	var (
		st  ledger.State
		err error
	)
	fallback := ledger.State{Failures: j.rec.Attempts, FirstAttempt: j.rec.FirstAttempt}
	switch res.Outcome {
	case delivery.Success:
		err = l.MarkDelivered(ctx, j.key, me, res.MessageID)
		w.ledgerResult(err, rb, j.id(), "recording the delivery of")
		return st
	case delivery.NotSent:
		if j.notSent < pol.maxNotSent {
			w.ledgerResult(l.Release(ctx, j.key, me), rb, j.id(), "releasing")
			return st
		}
		st, err = l.RecordFailure(ctx, j.key, me, at)
		fallback.Failures++
	case delivery.Throttled, delivery.Wait:
		d := pol.waitFor(res)
		if res.Outcome == delivery.Throttled {
			if err := w.cfg.Limiter.CoolOff(ctx, rb.limitKey(), rb.CoolOff); err != nil {
				w.health.failed(componentLimiter, err)
				w.log.Error("could not record cool-off", "robot", rb.Name, "err", err)
			}
			w.m.coolOffs.WithLabelValues(rb.Name).Inc()
			w.log.Warn("platform throttled robot; cooling off", "robot", rb.Name, "cool_off", rb.CoolOff, "errcode", res.ErrCode)
		} else {
			w.log.Warn("platform asked to wait", "robot", rb.Name, "for", d, "errcode", res.ErrCode, "reason", res.Reason)
		}
		st, err = l.RecordThrottle(ctx, j.key, me, d)
		fallback.Throttles = 1
	case delivery.Retryable:
		st, err = l.RecordFailure(ctx, j.key, me, at)
		fallback.Failures++
	default:
		return st // permanent: recorded with the dead letter
	}
	if !w.ledgerResult(err, rb, j.id(), "recording an outcome of") {
		if fallback.FirstAttempt.IsZero() && fallback.Failures > 0 {
			fallback.FirstAttempt = at
		}
		return fallback
	}
	return st
}

// reserve asks the limiter for a slot for rb. It fails closed: a limiter
// error is a short wait, never a grant. stopped reports the worker
// stopping.
func (w *Worker) reserve(ctx context.Context, rb *Robot) (granted bool, wait time.Duration, stopped bool) {
	d, err := w.cfg.Limiter.Reserve(ctx, rb.limitKey(), rb.Limit)
	if err != nil {
		if ctx.Err() != nil {
			return false, 0, true
		}
		w.health.failed(componentLimiter, err)
		w.m.limiterErrors.Inc()
		w.log.Error("limiter unavailable; holding messages", "robot", rb.Name, "err", err)
		return false, 500 * time.Millisecond, false
	}
	w.health.ok(componentLimiter)
	if d.Allowed {
		return true, 0, false
	}
	w.m.limiterWaits.WithLabelValues(rb.Name).Inc()
	return false, d.RetryAfter, false
}

// apply carries out a decision: the one place that acks, NAKs and
// dead-letters.
func (w *Worker) apply(ctx context.Context, j *job, a action) {
	rb, msg := j.rb, j.msg
	ev := Event{Robot: rb.Name, EnvelopeID: j.id(), Kind: a.event, Attempts: j.rec.Attempts, Reason: string(a.reason), Result: j.res, Delay: a.delay}
	switch a.verb {
	case doAck:
		if a.event == "duplicate" {
			w.m.duplicates.WithLabelValues(rb.Name).Inc()
		} else {
			ev.Attempts++
		}
		if j.digest != nil { // digest.go
			w.settleDigest(ctx, j, a)
			return
		}
		w.observe(ev)
		w.ack(ctx, msg, rb.Name, j.id())
	case doRetry:
		ev.Reason = j.rec.ErrMsg
		if j.lastReason != "" {
			ev.Reason = j.lastReason
		}
		w.observe(ev)
		w.log.Info("retrying", "robot", rb.Name, "id", j.id(), "attempt", j.rec.Attempts, "in", a.delay, "reason", ev.Reason)
		w.holdFor(ctx, j, a.delay) // direct lanes (direct.go)
		w.nak(msg, rb.Name, a.delay)
	case doWait:
		if j.key != "" && j.ledgerOK {
			// Counted, so the redelivery guard does not take it for a crash
			// (a throttle's wait was added to Waited when recorded).
			// Nor a wait for another holder's lease or wait mark: that
			// holder counts its own wait's time (once, not once per lane).
			d := a.delay
			if a.event == "throttled" || a.event == "held" {
				d = 0
			}
			_, err := w.cfg.Ledger.RecordWait(ctx, j.key, w.holder, d)
			w.ledgerResult(err, rb, j.id(), "counting a wait of")
		}
		w.observe(ev)
		if a.event == "handed_back" {
			_ = msg.Nak()
			return
		}
		w.log.Debug("waiting in JetStream", "robot", rb.Name, "id", j.id(), "for", a.delay, "why", a.event)
		d := a.delay + jitter(a.delay)
		if a.event != "held" { // another holder's mark holds the others off already
			w.holdFor(ctx, j, d) // direct lanes (direct.go)
		}
		w.nak(msg, rb.Name, d)
	case doDeadLetter:
		if j.digest != nil { // digest.go
			w.deadLetterDigest(ctx, j, a)
			return
		}
		j.rec.Reason, j.rec.Detail = a.reason, a.detail
		if a.reason == deadletter.ReasonThrottled {
			w.log.Error("platform keeps throttling robot; message dead-lettered", "robot", rb.Name, "id", j.id(),
				"errcode", j.rec.ErrCode, "throttles", a.detail)
		}
		w.deadLetter(ctx, j)
	default:
		w.log.Error("no decision for a message; it comes back (after AckWait, or at a direct lane's next read)", "robot", rb.Name, "id", j.id(), "verb", a.verb)
	}
}

func (w *Worker) nak(msg jetstream.Msg, robot string, d time.Duration) {
	if err := msg.NakWithDelay(d); err != nil {
		w.log.Warn("nak failed; the message comes back after AckWait", "robot", robot, "err", err)
	}
}

// jitter is up to 1% of d plus 5ms, spreading workers waiting for one slot.
func jitter(d time.Duration) time.Duration {
	return time.Duration(rand.Int64N(int64(5*time.Millisecond) + int64(d)/100))
}

// deadLetter records the outcome in the ledger (so the message is never
// posted again), publishes the record and, once the stream acknowledged
// it, acks the message. If the publish fails the message is NAKed and
// comes back later, after a pause growing with its deliveries
// ([deadLetterRetryDelay]), and is only dead-lettered again: it is never
// dropped, never posted again.
func (w *Worker) deadLetter(ctx context.Context, j *job) {
	rec, msg := j.rec, j.msg
	if j.key != "" && j.ledgerOK {
		out, _ := json.Marshal(outcomeRecord{Reason: rec.Reason, Detail: rec.Detail, Class: rec.Class, HTTPStatus: rec.HTTPStatus,
			ErrCode: rec.ErrCode, ErrMsg: rec.ErrMsg, Attempts: rec.Attempts})
		w.ledgerResult(w.cfg.Ledger.MarkPermanent(ctx, j.key, w.holder, string(out)), j.rb, j.id(), "recording the dead letter of")
	}
	rec.DeadAt = time.Now().UTC()
	robotLabel := rec.Robot
	if _, ok := w.robot(rec.Robot); !ok {
		robotLabel = "unknown" // no series per random name
	}
	if err := deadletter.Publish(ctx, w.js, w.cfg.Topology, rec); err != nil {
		var delivered uint64 = 1
		if md, err := msg.Metadata(); err == nil {
			delivered = md.NumDelivered
		}
		delay := deadLetterRetryDelay(delivered)
		w.health.failed(componentDeadLetters, err)
		w.m.deadLetterErrors.Inc()
		w.log.Error("dead-letter publish failed; message kept for retry (is the dead-letter stream full?)", "robot", rec.Robot, "id", j.id(), "in", delay, "err", err)
		if j.key != "" && j.ledgerOK {
			_, err := w.cfg.Ledger.RecordWait(ctx, j.key, w.holder, delay)
			w.ledgerResult(err, j.rb, j.id(), "counting a wait of")
		}
		w.nak(msg, rec.Robot, delay)
		return
	}
	w.health.ok(componentDeadLetters)
	w.m.deadLetters.WithLabelValues(robotLabel, string(rec.Reason)).Inc()
	w.log.Warn("dead-lettered", "robot", rec.Robot, "id", j.id(), "reason", rec.Reason, "detail", rec.Detail,
		"errcode", rec.ErrCode, "attempts", rec.Attempts)
	w.observe(Event{Robot: rec.Robot, EnvelopeID: j.id(), Kind: "dead_letter", Attempts: rec.Attempts, Reason: string(rec.Reason), Result: j.res})
	if md, err := msg.Metadata(); err != nil || md == nil {
		// Without metadata the message cannot be acked; take it out.
		_ = msg.Term()
		return
	}
	w.ack(ctx, msg, rec.Robot, j.id())
}

// deadLetterRetryDelay is the pause before a message whose dead-letter
// publish failed comes back: 5s at its first delivery, doubling with each
// delivery up to a minute.
func deadLetterRetryDelay(numDelivered uint64) time.Duration {
	const first, most = 5 * time.Second, time.Minute
	if numDelivered <= 1 {
		return first
	}
	if numDelivered > 5 { // 5s<<4 already exceeds a minute
		return most
	}
	return min(first<<(numDelivered-1), most)
}

// ack acknowledges msg without waiting for the server's confirmation: the
// robot's consumer hands out its next message only once the ack arrived,
// and an ack that is lost (a connection dropped) makes the message come
// back after AckWait, when the ledger's delivered mark has it acked
// without posting. Waiting for the confirmation cost the server a reply
// and the lane a round trip per message.
func (w *Worker) ack(_ context.Context, msg jetstream.Msg, robot, id string) {
	if err := msg.Ack(); err != nil {
		w.log.Warn("ack failed", "robot", robot, "id", id, "err", err)
	}
}

// ledgerResult notes a ledger call's error (health, metric, log) and
// reports whether it succeeded.
func (w *Worker) ledgerResult(err error, rb *Robot, id, doing string) bool {
	if err == nil {
		w.health.ok(componentLedger)
		return true
	}
	w.health.failed(componentLedger, err)
	w.m.ledgerErrors.Inc()
	w.log.Warn("ledger unavailable while "+doing+" a message; going on without it", "robot", rb.Name, "id", id, "err", err)
	return false
}

// fromState copies the ledger's counts, and a recorded dead-letter outcome,
// into the dead letter record.
func (j *job) fromState(st ledger.State) {
	j.rec.Attempts, j.rec.FirstAttempt = st.Failures, st.FirstAttempt
	if st.Permanent == "" {
		return
	}
	o := parseOutcome(st.Permanent)
	j.rec.Class, j.rec.HTTPStatus, j.rec.ErrCode, j.rec.ErrMsg = o.Class, o.HTTPStatus, o.ErrCode, o.ErrMsg
	j.rec.Attempts = max(j.rec.Attempts, o.Attempts)
}

// setResult keeps a request's result in the dead letter record.
func (j *job) setResult(res delivery.Result, at time.Time) {
	j.res = res
	j.lastReason = res.Reason
	j.rec.Class, j.rec.HTTPStatus, j.rec.ErrCode, j.rec.ErrMsg = res.Outcome.String(), res.HTTPStatus, res.ErrCode, res.ErrMsg
	j.rec.LastAttempt = at
	switch res.Outcome {
	case delivery.Retryable, delivery.Permanent:
		j.rec.Attempts++
		if j.rec.FirstAttempt.IsZero() {
			j.rec.FirstAttempt = at
		}
	}
}

// heartbeat tells the server the message is being worked on until stop is
// called, so a long wait (a cool-off) does not cause a redelivery. It beats
// every third of ackWait and, when refresh is set, at once asks the server
// for the consumer's AckWait (another worker may have shortened it on the
// shared consumer) and follows it: the lane never waits for that call
// while holding the message.
func (w *Worker) heartbeat(msg jetstream.Msg, c jetstream.Consumer, ackWait time.Duration, refresh func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(ackWait/3, time.Millisecond))
		defer t.Stop()
		if refresh != nil && c != nil {
			_ = msg.InProgress()
			ictx, cancel := context.WithTimeout(context.Background(), time.Second)
			if info, err := c.Info(ictx); err == nil {
				refresh()
				if cw := info.Config.AckWait; cw > 0 && cw < ackWait {
					t.Reset(max(cw/3, time.Millisecond))
					_ = msg.InProgress()
				}
			}
			cancel()
		}
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

func (w *Worker) observe(ev Event) {
	if w.cfg.Observe != nil {
		w.cfg.Observe(ev)
	}
}

// ledgerKey is "<robot>/<id>" ([stream.MsgID]) for the message's publish
// id: the envelope id, or for a replayed message its distinct replay id,
// so a replay starts with a fresh attempt budget.
func ledgerKey(robot string, msg jetstream.Msg, env *envelope.Envelope) string {
	id := strings.TrimPrefix(msg.Headers().Get(jetstream.MsgIDHeader), robot+"/")
	if id == "" {
		id = env.ID
	}
	return stream.MsgID(robot, id)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
