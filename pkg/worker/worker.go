package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/stream"
)

// Sender delivers one envelope to one robot and classifies the answer.
// *delivery.Deliverer implements it.
type Sender interface {
	Deliver(ctx context.Context, robot delivery.Robot, env *envelope.Envelope) delivery.Result
}

// Robot is a configured robot with its rate policy.
type Robot struct {
	delivery.Robot
	// Limit is the robot's rate limit.
	Limit limiter.Limit
	// CoolOff is how long the robot is left alone after the platform
	// throttled it.
	CoolOff time.Duration
	// LimitKey is the limiter key of the robot's window and cool-off (the
	// identity of the platform robot, see config.RobotIdentity); empty
	// means Name.
	LimitKey string
}

// limitKey is the robot's key in the limiter.
func (r *Robot) limitKey() string {
	if r.LimitKey != "" {
		return r.LimitKey
	}
	return r.Name
}

// Backoff shapes the delay between retryable attempts.
type Backoff struct {
	Initial    time.Duration // default 1s
	Max        time.Duration // default 5m
	Multiplier float64       // default 2
	Jitter     float64       // randomization factor, default 0.5
}

// Config configures a [Worker]. Zero values mean the documented default.
type Config struct {
	// Topology names streams and subjects; the zero value is production's.
	Topology stream.Topology
	// Robots to deliver to; each gets a lane.
	Robots []Robot
	// Sender, Limiter and Ledger are required.
	Sender  Sender
	Limiter limiter.Limiter
	Ledger  ledger.Ledger
	// Presence, when set, is where workers announce the robots they serve
	// (every SweepInterval, or every 30s with the sweep disabled, for
	// 3×that interval), so the sweep can tell a robot removed from every
	// worker's config from one whose worker is busy: an unconfigured robot
	// whose consumer still exists is taken as removed once two sweeps in a
	// row found it announced by nobody; its consumer is deleted and its
	// messages dead-lettered. Use it on every worker of a deployment or on
	// none (a worker without it announces nothing). Both ledgers implement
	// it. Nil keeps the weaker guess: a consumer with no pull waiting and
	// nothing pending, seen by two sweeps in a row, is abandoned; a robot
	// whose head message was handed back (at drain, or for a cool-off) is
	// then never swept.
	Presence ledger.Presence
	// Concurrency bounds the HTTP deliveries in flight; default 32.
	Concurrency int
	// MaxAttempts is the number of HTTP attempts before a retryable
	// failure is dead-lettered; default 8.
	MaxAttempts int
	// MaxElapsed bounds the time from the first failed attempt; default 1h.
	MaxElapsed time.Duration
	// Backoff between retryable attempts.
	Backoff Backoff
	// AckWait of the robot consumers; default 30s. The consumers are
	// shared, and the worker started last sets it; lanes heartbeat
	// (InProgress) every third of the shorter of this and the consumer's
	// (refreshed at most every AckWait/3) while they hold a message.
	AckWait time.Duration
	// FetchWait is how long one pull waits for a message, and so the
	// longest a lane takes to notice a shutdown; default 2s.
	FetchWait time.Duration
	// MaxRedeliveries dead-letters a message handed out this many times
	// without an outcome (a worker crashing on it); retries and waits handed
	// back to JetStream do not count. Default 100.
	MaxRedeliveries int
	// HoldMax is the longest wait for a rate slot a lane sleeps through
	// while holding the message (heartbeating). A longer wait (a full
	// window, a ban cool-off) hands the message back to JetStream with a
	// delayed redelivery at the slot, plus jitter. Default 10s.
	HoldMax time.Duration
	// SweepInterval is how often messages addressed to unconfigured robots
	// are looked for and dead-lettered; default 30s, negative disables.
	SweepInterval time.Duration
	// Name identifies this worker in dead letters; default host-pid.
	Name string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Metrics; nil means NewMetrics(nil) (counted, not exported).
	Metrics *Metrics
	// Observe, when set, is called with every outcome (tests, the demo).
	Observe func(Event)
}

// Event reports what happened to one message.
type Event struct {
	Robot      string
	EnvelopeID string
	// Kind is "delivered", "retry", "throttled", "deferred" (handed back
	// to wait for a slot), "dead_letter", "duplicate" or "handed_back"
	// (returned at shutdown).
	Kind     string
	Attempts int
	Reason   string
	Result   delivery.Result
}

// Worker delivers messages; see the package doc.
type Worker struct {
	js     jetstream.JetStream
	cfg    Config
	log    *slog.Logger
	m      *Metrics
	sem    chan struct{}
	robots map[string]*Robot
}

// ErrInvalidConfig is matched by errors from [New].
var ErrInvalidConfig = errors.New("worker: invalid config")

// New validates cfg and returns a worker; call [Worker.Run] to start it.
func New(js jetstream.JetStream, cfg Config) (*Worker, error) {
	if js == nil || cfg.Sender == nil || cfg.Limiter == nil || cfg.Ledger == nil {
		return nil, fmt.Errorf("%w: JetStream, Sender, Limiter and Ledger are required", ErrInvalidConfig)
	}
	if err := cfg.Topology.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	setDefault(&cfg.Concurrency, 32)
	setDefault(&cfg.MaxAttempts, 8)
	setDefault(&cfg.MaxRedeliveries, 100)
	setDefault(&cfg.HoldMax, 10*time.Second)
	setDefault(&cfg.MaxElapsed, time.Hour)
	setDefault(&cfg.AckWait, 30*time.Second)
	setDefault(&cfg.FetchWait, 2*time.Second)
	setDefault(&cfg.SweepInterval, 30*time.Second)
	setDefault(&cfg.Backoff.Initial, time.Second)
	setDefault(&cfg.Backoff.Max, 5*time.Minute)
	setDefault(&cfg.Backoff.Multiplier, 2)
	setDefault(&cfg.Backoff.Jitter, 0.5)
	if cfg.Name == "" {
		host, _ := os.Hostname()
		cfg.Name = host + "-" + strconv.Itoa(os.Getpid())
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	w := &Worker{js: js, cfg: cfg, log: cfg.Logger, m: cfg.Metrics,
		sem: make(chan struct{}, cfg.Concurrency), robots: make(map[string]*Robot)}
	for i := range cfg.Robots {
		r := &cfg.Robots[i]
		if _, dup := w.robots[r.Name]; dup {
			return nil, fmt.Errorf("%w: robot %q configured twice", ErrInvalidConfig, r.Name)
		}
		if r.Limit.Max <= 0 || r.Limit.Window <= 0 {
			return nil, fmt.Errorf("%w: robot %q: limit needs Max > 0 and Window > 0", ErrInvalidConfig, r.Name)
		}
		w.robots[r.Name] = r
	}
	if len(w.robots) == 0 {
		return nil, fmt.Errorf("%w: no robots", ErrInvalidConfig)
	}
	return w, nil
}

func setDefault[T int | float64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// Run creates the streams and consumers, then delivers until ctx is
// cancelled, and drains (see the package doc). It returns nil after a clean
// drain, or the error that kept it from starting.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.cfg.Topology.Ensure(ctx, w.js); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	if w.cfg.Presence != nil {
		// Before the consumers exist, so no other worker's sweep sees one
		// of them unannounced.
		w.announce(ctx)
	}
	consumers := make(map[string]jetstream.Consumer, len(w.robots))
	for name := range w.robots {
		c, err := w.cfg.Topology.EnsureRobotConsumer(ctx, w.js, name, w.cfg.AckWait)
		if err != nil {
			// One robot's consumer must not keep the others from being
			// served: its lane keeps trying to create it.
			w.log.Error("could not create robot consumer; its lane keeps trying", "robot", name, "err", err)
		}
		consumers[name] = c
	}
	w.log.Info("worker started", "worker", w.cfg.Name, "robots", len(consumers), "concurrency", w.cfg.Concurrency)
	var wg sync.WaitGroup
	for name, c := range consumers {
		wg.Go(func() { w.lane(ctx, w.robots[name], c) })
	}
	if w.cfg.SweepInterval > 0 || w.cfg.Presence != nil {
		wg.Go(func() { w.sweepLoop(ctx) })
	}
	wg.Wait()
	w.log.Info("worker drained", "worker", w.cfg.Name)
	return nil
}

// lane fetches and handles rb's messages one at a time until ctx is done.
// A nil c (or one deleted meanwhile) is created first, retried with a
// growing pause.
func (w *Worker) lane(ctx context.Context, rb *Robot, c jetstream.Consumer) {
	errWait := time.Second
	refreshed := time.Now() // of c's cached info
	for ctx.Err() == nil {
		if c == nil {
			nc, err := w.cfg.Topology.EnsureRobotConsumer(ctx, w.js, rb.Name, w.cfg.AckWait)
			if err != nil {
				if ctx.Err() == nil {
					w.log.Error("could not create robot consumer", "robot", rb.Name, "err", err, "retry_in", errWait)
					sleep(ctx, errWait)
					errWait = min(2*errWait, 30*time.Second)
				}
				continue
			}
			c, refreshed, errWait = nc, time.Now(), time.Second
		}
		msg, err := c.Next(jetstream.FetchMaxWait(w.cfg.FetchWait))
		if err != nil {
			switch {
			case ctx.Err() != nil:
			case errors.Is(err, jetstream.ErrNoMessages), errors.Is(err, nats.ErrTimeout):
				// Now and then make sure the consumer still exists.
				if time.Since(refreshed) >= max(10*w.cfg.FetchWait, 5*time.Second) {
					c, refreshed = w.checkConsumer(ctx, rb, c, refreshed)
				}
			case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrConsumerDeleted):
				// Deleted by an operator, or lost with the server's state:
				// create it again rather than stop serving the robot.
				w.log.Warn("robot consumer is gone; creating it again", "robot", rb.Name)
				c = nil
			default:
				// A pull to a consumer deleted meanwhile is answered with
				// "no responders"; so is one while JetStream is down.
				w.log.Warn("fetch failed", "robot", rb.Name, "err", err)
				if c, refreshed = w.checkConsumer(ctx, rb, c, refreshed); c != nil {
					sleep(ctx, time.Second)
				}
			}
			continue
		}
		if ctx.Err() != nil { // arrived while stopping: hand it back at once
			_ = msg.Nak()
			return
		}
		// Another worker may have set a shorter AckWait on the shared
		// consumer since this one read it.
		if time.Since(refreshed) >= w.cfg.AckWait/3 {
			// Briefly: the message is held without a heartbeat meanwhile.
			ictx, cancel := context.WithTimeout(ctx, time.Second)
			if _, err := c.Info(ictx); err == nil { // refreshes CachedInfo
				refreshed = time.Now()
			}
			cancel()
		}
		ackWait := w.cfg.AckWait
		if cw := c.CachedInfo().Config.AckWait; cw > 0 {
			ackWait = min(ackWait, cw)
		}
		w.handle(ctx, rb, msg, ackWait)
	}
}

// checkConsumer asks the server for c's info: it returns nil when the
// consumer is gone (the lane then creates it again), else c and the time of
// the refreshed info (unchanged when the server could not be asked).
func (w *Worker) checkConsumer(ctx context.Context, rb *Robot, c jetstream.Consumer, refreshed time.Time) (jetstream.Consumer, time.Time) {
	ictx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err := c.Info(ictx)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		w.log.Warn("robot consumer is gone; creating it again", "robot", rb.Name)
		return nil, refreshed
	case err == nil:
		return c, time.Now()
	}
	return c, refreshed
}

// handle takes one message to an outcome. runCtx stops waits; in-flight
// HTTP requests and acks use a context that outlives it. ackWait is the
// consumer's, which sets the heartbeat.
func (w *Worker) handle(runCtx context.Context, rb *Robot, msg jetstream.Msg, ackWait time.Duration) {
	hctx := context.WithoutCancel(runCtx)
	stop := w.heartbeat(msg, ackWait)
	defer stop()

	md, err := msg.Metadata()
	if err != nil {
		w.log.Error("message without metadata", "robot", rb.Name, "err", err)
		_ = msg.Term()
		return
	}
	rec := deadletter.Record{Robot: rb.Name, Subject: msg.Subject(), Sequence: md.Sequence.Stream, Worker: w.cfg.Name}
	env, err := envelope.Decode(msg.Data())
	if err != nil {
		rec.Raw, rec.Reason, rec.Detail = msg.Data(), deadletter.ReasonDecode, err.Error()
		w.deadLetter(hctx, msg, rec, "", "")
		return
	}
	rec.Envelope = env
	if env.Robot != rb.Name {
		rec.Reason = deadletter.ReasonUnknownRobot
		rec.Detail = fmt.Sprintf("envelope addressed to robot %q arrived on robot %q's subject", env.Robot, rb.Name)
		w.deadLetter(hctx, msg, rec, env.ID, "")
		return
	}
	key := ledgerKey(msg, env)
	st, err := w.cfg.Ledger.Get(hctx, key)
	ledgerOK := err == nil
	if !ledgerOK {
		w.log.Warn("ledger unavailable; delivering without the idempotency check", "robot", rb.Name, "id", env.ID, "err", err)
	}
	if st.Delivered {
		w.m.duplicates.WithLabelValues(rb.Name).Inc()
		w.observe(Event{Robot: rb.Name, EnvelopeID: env.ID, Kind: "duplicate"})
		w.ack(hctx, msg, rb.Name, env.ID)
		return
	}
	rec.Attempts, rec.FirstAttempt = st.Failures, st.FirstAttempt
	if ledgerOK && st.Failures > 0 && (st.Failures >= w.cfg.MaxAttempts || time.Since(st.FirstAttempt) >= w.cfg.MaxElapsed) {
		// Its budget is spent (the dead-letter publish failed before):
		// dead-letter it without posting it again.
		rec.Reason = deadletter.ReasonExhausted
		rec.Detail = fmt.Sprintf("gave up after %d attempts", st.Failures)
		w.deadLetter(hctx, msg, rec, env.ID, key)
		return
	}
	// Without the ledger, retries and waits cannot be told from crashes:
	// the guard waits for it (the limiter holds the message meanwhile).
	if lost := unexplained(md.NumDelivered, st); ledgerOK && lost > w.cfg.MaxRedeliveries {
		rec.Reason = deadletter.ReasonRedelivered
		rec.Detail = fmt.Sprintf("handed out %d times without an outcome", lost+1)
		w.deadLetter(hctx, msg, rec, env.ID, key)
		return
	}
	if err := delivery.CheckKeywords(rb.Robot, env); err != nil {
		rec.Reason, rec.Detail = deadletter.ReasonMissingKeyword, err.Error()
		w.deadLetter(hctx, msg, rec, env.ID, key)
		return
	}
	for {
		if env.Expired(time.Now()) {
			rec.Reason = deadletter.ReasonExpired
			rec.Detail = "expired at " + env.ExpiresAt.Format(time.RFC3339) + " before it could be posted"
			w.deadLetter(hctx, msg, rec, env.ID, key)
			return
		}
		outcome, wait := w.waitSlot(runCtx, rb)
		switch outcome {
		case slotDeferred:
			w.deferWait(hctx, rb, msg, env, key, wait)
			return
		case slotStopped:
			w.handBack(hctx, rb, msg, env, key)
			return
		}
		start := time.Now()
		if env.Expired(start) { // it expired while waiting for its slot
			<-w.sem
			continue
		}
		if wait > 0 && w.deliveredMeanwhile(hctx, key) {
			// Another worker got and posted it while this one held it
			// (a heartbeat lost, the message redelivered): do not post twice.
			<-w.sem
			w.m.duplicates.WithLabelValues(rb.Name).Inc()
			w.observe(Event{Robot: rb.Name, EnvelopeID: env.ID, Kind: "duplicate"})
			w.ack(hctx, msg, rb.Name, env.ID)
			return
		}
		res := w.cfg.Sender.Deliver(hctx, rb.Robot, env)
		<-w.sem
		w.m.latency.WithLabelValues(rb.Name).Observe(time.Since(start).Seconds())
		w.m.deliveries.WithLabelValues(rb.Name, res.Outcome.String()).Inc()
		if again := w.settle(hctx, rb, msg, env, key, &rec, res, start); !again {
			return
		}
	}
}

// settle maps one delivery outcome to the queue action. It is the only
// place that decides; it reports whether the message should be tried again
// now (after a throttle, once the cool-off has passed).
func (w *Worker) settle(ctx context.Context, rb *Robot, msg jetstream.Msg, env *envelope.Envelope, key string, rec *deadletter.Record, res delivery.Result, at time.Time) bool {
	rec.Class, rec.HTTPStatus, rec.ErrCode, rec.ErrMsg = res.Outcome.String(), res.HTTPStatus, res.ErrCode, res.ErrMsg
	rec.LastAttempt = at
	if rec.FirstAttempt.IsZero() {
		rec.FirstAttempt = at
	}
	ev := Event{Robot: rb.Name, EnvelopeID: env.ID, Reason: res.Reason, Result: res}
	switch res.Outcome {
	case delivery.Success:
		if err := w.cfg.Ledger.MarkDelivered(ctx, key, res.MessageID); err != nil {
			w.log.Warn("delivered but the ledger could not record it", "robot", rb.Name, "id", env.ID, "err", err)
		}
		ev.Kind, ev.Attempts = "delivered", rec.Attempts+1
		w.observe(ev)
		w.ack(ctx, msg, rb.Name, env.ID)
		return false
	case delivery.Throttled:
		if err := w.cfg.Limiter.CoolOff(ctx, rb.limitKey(), rb.CoolOff); err != nil {
			w.log.Error("could not record cool-off", "robot", rb.Name, "err", err)
		}
		w.m.coolOffs.WithLabelValues(rb.Name).Inc()
		w.log.Warn("platform throttled robot; cooling off", "robot", rb.Name, "cool_off", rb.CoolOff, "errcode", res.ErrCode)
		ev.Kind = "throttled"
		w.observe(ev)
		return true
	case delivery.Retryable:
		st, err := w.cfg.Ledger.RecordFailure(ctx, key, at)
		if err != nil {
			w.log.Warn("ledger unavailable; retrying without counting", "robot", rb.Name, "id", env.ID, "err", err)
			st = ledger.State{Failures: rec.Attempts + 1, FirstAttempt: rec.FirstAttempt}
		}
		rec.Attempts, rec.FirstAttempt = st.Failures, st.FirstAttempt
		if st.Failures >= w.cfg.MaxAttempts || at.Sub(st.FirstAttempt) >= w.cfg.MaxElapsed {
			rec.Reason = deadletter.ReasonExhausted
			rec.Detail = fmt.Sprintf("gave up after %d attempts: %s", st.Failures, res.Reason)
			w.deadLetter(ctx, msg, *rec, env.ID, key)
			return false
		}
		delay := max(w.retryDelay(st.Failures), res.RetryAfter)
		ev.Kind, ev.Attempts = "retry", st.Failures
		w.observe(ev)
		w.log.Info("retrying", "robot", rb.Name, "id", env.ID, "attempt", st.Failures, "in", delay, "reason", res.Reason)
		if err := msg.NakWithDelay(delay); err != nil {
			w.log.Warn("nak failed; the message comes back after AckWait", "robot", rb.Name, "err", err)
		}
		return false
	default: // delivery.Permanent and anything unclassified
		rec.Attempts++
		rec.Reason = deadletter.ReasonPermanent
		rec.Detail = res.Reason
		w.deadLetter(ctx, msg, *rec, env.ID, key)
		return false
	}
}

// deadLetter publishes rec and, once the stream acknowledged it, acks msg.
// If the publish fails the message is NAKed and comes back later, after a
// pause growing with its deliveries ([deadLetterRetryDelay]): it is never
// dropped. With a ledger key the hand-back is recorded as a wait, so the
// redelivery guard does not take it for a crash.
func (w *Worker) deadLetter(ctx context.Context, msg jetstream.Msg, rec deadletter.Record, id, key string) {
	rec.DeadAt = time.Now().UTC()
	if err := deadletter.Publish(ctx, w.js, w.cfg.Topology, rec); err != nil {
		var delivered uint64 = 1
		if md, err := msg.Metadata(); err == nil {
			delivered = md.NumDelivered
		}
		delay := deadLetterRetryDelay(delivered)
		w.log.Error("dead-letter publish failed; message kept for retry", "robot", rec.Robot, "id", id, "in", delay, "err", err)
		if key != "" {
			if _, err := w.cfg.Ledger.RecordWait(ctx, key); err != nil {
				w.log.Warn("ledger unavailable; wait not counted", "robot", rec.Robot, "id", id, "err", err)
			}
		}
		_ = msg.NakWithDelay(delay)
		return
	}
	w.m.deadLetters.WithLabelValues(rec.Robot, string(rec.Reason)).Inc()
	w.log.Warn("dead-lettered", "robot", rec.Robot, "id", id, "reason", rec.Reason, "detail", rec.Detail,
		"errcode", rec.ErrCode, "attempts", rec.Attempts)
	w.observe(Event{Robot: rec.Robot, EnvelopeID: id, Kind: "dead_letter", Attempts: rec.Attempts, Reason: string(rec.Reason)})
	w.ack(ctx, msg, rec.Robot, id)
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

func (w *Worker) ack(ctx context.Context, msg jetstream.Msg, robot, id string) {
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		// The message will be redelivered; the ledger keeps it from
		// being posted twice.
		w.log.Warn("ack failed", "robot", robot, "id", id, "err", err)
	}
}

// Outcomes of [Worker.waitSlot].
const (
	slotGranted  = iota // a slot is reserved: send now
	slotDeferred        // the wait is longer than HoldMax: hand the message back
	slotStopped         // the worker is stopping
)

// waitSlot waits until the limiter grants rb a send slot, holding one of
// the worker's delivery slots when it returns slotGranted (the caller
// releases it after the request), for at most
// HoldMax at a time; it returns slotDeferred with the wait when the next
// slot (or the end of a cool-off) is further away. It fails closed: a
// limiter error is a wait, never a grant, and errors are waited out here
// with a growing pause. The returned duration is the total time waited
// when granted.
func (w *Worker) waitSlot(ctx context.Context, rb *Robot) (int, time.Duration) {
	errWait := 100 * time.Millisecond
	var waited time.Duration
	for {
		// Take the delivery slot first, so a granted rate slot is used at
		// once: a grant that waited for a busy semaphore would reach the
		// platform later than the limiter's margin allows for.
		if !w.acquire(ctx) {
			return slotStopped, 0
		}
		d, err := w.cfg.Limiter.Reserve(ctx, rb.limitKey(), rb.Limit)
		if err == nil && d.Allowed {
			return slotGranted, waited
		}
		<-w.sem
		wait := d.RetryAfter
		if err != nil {
			if ctx.Err() != nil {
				return slotStopped, 0
			}
			w.m.limiterErrors.Inc()
			w.log.Error("limiter unavailable; holding messages", "robot", rb.Name, "err", err)
			wait, errWait = errWait, min(errWait*2, 2*time.Second)
		} else {
			if waited == 0 {
				w.m.limiterWaits.WithLabelValues(rb.Name).Inc()
			}
			// A little jitter spreads workers that wait for the same slot.
			wait += time.Duration(rand.Int64N(int64(5*time.Millisecond) + int64(wait)/100))
			if wait > w.cfg.HoldMax {
				return slotDeferred, wait
			}
		}
		if !sleep(ctx, wait) {
			return slotStopped, 0
		}
		waited += wait
	}
}

// deferWait hands msg back to JetStream to be redelivered when rb's next
// slot is due: a long wait (a full window, a ban cool-off) then costs no
// worker anything. The message stays pending on rb's consumer, so rb's
// later messages still wait behind it. It is not an attempt; the ledger
// counts it so the redelivery guard can tell it from a crash.
func (w *Worker) deferWait(ctx context.Context, rb *Robot, msg jetstream.Msg, env *envelope.Envelope, key string, wait time.Duration) {
	if _, err := w.cfg.Ledger.RecordWait(ctx, key); err != nil {
		w.log.Warn("ledger unavailable; wait not counted", "robot", rb.Name, "id", env.ID, "err", err)
	}
	w.observe(Event{Robot: rb.Name, EnvelopeID: env.ID, Kind: "deferred"})
	w.log.Debug("waiting for the robot's next slot in JetStream", "robot", rb.Name, "id", env.ID, "for", wait)
	if err := msg.NakWithDelay(wait); err != nil {
		w.log.Warn("nak failed; the message comes back after AckWait", "robot", rb.Name, "err", err)
	}
}

// handBack returns msg to JetStream at once (the worker is stopping), and
// counts it as a wait: it is not a crash for the redelivery guard.
func (w *Worker) handBack(ctx context.Context, rb *Robot, msg jetstream.Msg, env *envelope.Envelope, key string) {
	if _, err := w.cfg.Ledger.RecordWait(ctx, key); err != nil {
		w.log.Warn("ledger unavailable; hand-back not counted", "robot", rb.Name, "id", env.ID, "err", err)
	}
	w.observe(Event{Robot: rb.Name, EnvelopeID: env.ID, Kind: "handed_back"})
	_ = msg.Nak()
}

// deliveredMeanwhile reports whether the ledger marks key delivered.
func (w *Worker) deliveredMeanwhile(ctx context.Context, key string) bool {
	st, err := w.cfg.Ledger.Get(ctx, key)
	return err == nil && st.Delivered
}

func (w *Worker) acquire(ctx context.Context) bool {
	select {
	case w.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// heartbeat tells the server the message is being worked on until stop is
// called, so a long wait (a cool-off) does not cause a redelivery. It beats
// every ackWait/3.
func (w *Worker) heartbeat(msg jetstream.Msg, ackWait time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(ackWait/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// retryDelay is the backoff before attempt failures+1.
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

func (w *Worker) observe(ev Event) {
	if w.cfg.Observe != nil {
		w.cfg.Observe(ev)
	}
}

// unexplained counts the redeliveries of a message that neither a retry nor
// a wait handed back to JetStream explains: a worker died holding it. With
// the ledger unavailable (zero state) every redelivery counts.
func unexplained(numDelivered uint64, st ledger.State) int {
	return max(int(numDelivered)-1-st.Failures-st.Waits, 0)
}

// ledgerKey is the envelope id, or for a replayed message its distinct
// publish id, so a replay starts with a fresh attempt budget.
func ledgerKey(msg jetstream.Msg, env *envelope.Envelope) string {
	if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" && id != env.ID {
		return id
	}
	return env.ID
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
