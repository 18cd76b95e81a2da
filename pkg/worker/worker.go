package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
	// OnUnknownOutcome is what becomes of a message whose worker died
	// between posting it and recording the answer, so nobody can know
	// whether the platform took it: [Repost] (the zero value; DingTalk drops
	// the repeat by msgUuid) or [DeadLetter] (reason unknown_outcome, for
	// groups where a duplicate is worse than a gap; operators replay).
	OnUnknownOutcome UnknownOutcomePolicy
	// Replies makes the robot an app's reply robot (Name is the app's):
	// its messages are replies to inbound events ([envelope.Envelope.ReplyTo]),
	// posted to each event's session webhook, limited per conversation
	// (see reply.go). Webhook and Secret are not used.
	Replies bool
	// Digest, when set, folds the robot's waiting messages into summary
	// posts once its budget cannot post them one by one in time (see
	// [Digest]).
	Digest *Digest
	// Pool makes the robot a robot pool (Name is the pool's): the names of
	// configured robots of one platform and one chat group, its members.
	// The pool has its own subject, consumer and ledger keys, and each
	// request goes to the member whose next slot is earliest, with the
	// member's webhook, secret, keywords, limit and cool-off (see pool.go).
	// Limit, CoolOff, LimitKey, Webhook and Secret of the pool are not used.
	Pool []string
}

// UnknownOutcomePolicy is a robot's [Robot.OnUnknownOutcome].
type UnknownOutcomePolicy int

const (
	// Repost posts the message again.
	Repost UnknownOutcomePolicy = iota
	// DeadLetter dead-letters it with reason unknown_outcome.
	DeadLetter
)

// String is the configuration spelling: "repost" or "dead_letter".
func (p UnknownOutcomePolicy) String() string {
	if p == DeadLetter {
		return "dead_letter"
	}
	return "repost"
}

// limitKey is the robot's key in the limiter.
func (r *Robot) limitKey() string {
	if r.LimitKey != "" {
		return r.LimitKey
	}
	return r.Name
}

// inspect reads rb's limiter state without changing it; ok is false when
// the limiter cannot tell (no [limiter.Inspector]) or the read failed.
func (w *Worker) inspect(ctx context.Context, rb *Robot) (st limiter.State, ok bool) {
	in, ok := w.cfg.Limiter.(limiter.Inspector)
	if !ok {
		return limiter.State{}, false
	}
	st, err := in.Inspect(ctx, rb.limitKey(), rb.Limit)
	if err != nil {
		return limiter.State{}, false
	}
	return st, true
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
	// Robots to deliver to; each robot with messages gets a lane. See
	// [Worker.Reload] to change them while running.
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
	// Concurrency bounds, per webhook host, the HTTP requests being
	// written (connecting, TLS, writing); default 32. A request that was
	// written waits for its answer without holding a slot, so blackholed
	// webhooks cannot stall the other robots.
	Concurrency int
	// MaxAttempts is the number of HTTP attempts before a retryable
	// failure is dead-lettered; default 8.
	MaxAttempts int
	// MaxElapsed bounds the time from the first failed attempt, less the
	// time spent waiting for rate slots, cool-offs and the platform's
	// "later" since; default 1h.
	MaxElapsed time.Duration
	// MaxThrottles dead-letters a message (reason throttled) once the
	// platform throttled it, or asked it to wait, this many times; default 6.
	MaxThrottles int
	// Backoff between retryable attempts.
	Backoff Backoff
	// AckWait of the robot consumers; default 30s, at least [MinAckWait]. The consumers are
	// shared, and the worker whose lane created or updated one last sets it; lanes heartbeat
	// (InProgress) every third of the shorter of this and the consumer's
	// (refreshed at most every AckWait/3) while they hold a message.
	AckWait time.Duration
	// FetchWait is how long one pull waits for a message, and so the
	// longest a lane takes to notice a shutdown; default 2s.
	FetchWait time.Duration
	// LaneIdle is how long a robot's lane keeps pulling without a message
	// before it stops (see the package doc: lanes run only for robots with
	// work); default 10s. A lane that handed a message back for a delayed
	// redelivery runs at least until it is due.
	LaneIdle time.Duration
	// ScanInterval is how often the outbound stream's per-robot counts are
	// read (one request) to start the lanes of robots with messages but no
	// lane (a lost announcement, a message handed back by a worker that
	// stopped, a robot whose owner died: see the package doc); also at
	// start and after every reconnect. Default 10s.
	ScanInterval time.Duration
	// ConsumerLanes serves each robot with messages through a consumer of
	// its own (lanes.go), as workers did before direct lanes. By default
	// (false) a robot's lane has no consumer: it reads the first message
	// of the robot's subject still in the stream and deletes it once
	// settled (direct.go). Digest robots use a consumer either way.
	ConsumerLanes bool
	// MaxRedeliveries dead-letters a message handed out this many times
	// without an outcome (a worker crashing on it); retries and waits handed
	// back to JetStream do not count. Default 100. A direct lane counts its
	// own reads only; there a repost after a worker died posting the
	// message spends an attempt of MaxAttempts instead (direct.go).
	MaxRedeliveries int
	// HoldMax is the longest wait for a rate slot a lane sleeps through
	// while holding the message (heartbeating). A longer wait (a full
	// window, a ban cool-off) hands the message back to JetStream with a
	// delayed redelivery at the slot, plus jitter. Default 10s.
	HoldMax time.Duration
	// SweepInterval is how often messages addressed to unconfigured robots
	// are looked for and dead-lettered; default 30s, negative disables.
	SweepInterval time.Duration
	// Name identifies this worker in dead letters and logs; default
	// host-pid. Its in-flight marks in the ledger carry Name plus a random
	// id of this process, so a restarted process of the same name (the
	// same host and pid in a container) never takes a dead one's marks for
	// its own.
	Name string
	// RequestTimeout is the Sender's bound on one request, answer included
	// (delivery.DefaultTimeout, 10s, unless changed); the in-flight lease
	// covers it, so a worker waiting for its answer is never taken for
	// dead. Default 10s.
	RequestTimeout time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Metrics; nil means NewMetrics(nil) (counted, not exported).
	Metrics *Metrics
	// Observe, when set, is called with every outcome (tests, the demo).
	Observe func(Event)
	// PoolRetry is how long a pool member that failed for a reason of its
	// own (token not found, robot disabled, sign not match) stays out of
	// its pools' rotation before one message is tried on it again; default
	// 1h. A reload or restart puts every member back at once.
	PoolRetry time.Duration
}

// Event reports what happened to one message.
type Event struct {
	Robot      string
	EnvelopeID string
	// Kind is "delivered", "retry", "throttled" (the platform throttled it
	// or asked it to wait), "deferred" (handed back to wait for a slot),
	// "held" (another worker holds it in flight), "member_out" (a pool
	// member failed for a reason of its own and left the rotation; the
	// message goes to another member), "not_sent" (abandoned
	// unwritten at its write deadline, tried again), "dead_letter",
	// "duplicate" or "handed_back" (returned at shutdown).
	Kind     string
	Attempts int
	// Delay is, for a message handed back to JetStream to wait or retry,
	// how long until it comes back; 0 when the lane keeps holding it.
	Delay  time.Duration
	Reason string
	Result delivery.Result
}

// Worker delivers messages; see the package doc.
type Worker struct {
	js jetstream.JetStream
	// started is set once Run has the streams and listens for work.
	started atomic.Bool
	cfg     Config
	log     *slog.Logger
	m       *Metrics
	// set is the configured robots and their write semaphores, swapped
	// whole by [Worker.Reload].
	set atomic.Pointer[robotSet]
	// reloadMu serializes reloads (readers use set without it).
	reloadMu sync.Mutex
	// owner, when set, tells which robots this worker serves (nil: all);
	// set by Run (owner.go), read by lanes.
	owner ownership
	// lanes are the running lanes, by robot.
	lanes laneSet
	// orphanSem is the write semaphore of robots removed while one of
	// their messages is handled.
	semMu     sync.Mutex
	orphanSem chan struct{}
	// out is the outbound stream's handle for direct lanes, read once.
	outMu sync.Mutex
	out   jetstream.Stream
	// creates bounds the consumer creations in flight.
	creates chan struct{}
	// scanNow asks the scan loop for a scan at once ([Worker.rescan]).
	scanNow chan struct{}
	// holder marks this process's claims in the ledger: Name + "/" + a
	// random id.
	holder string
	health health
	// noConsumer holds the robots whose consumer could not be created (a
	// server limit such as 10026 "maximum consumers limit reached").
	noConsumer unservedSet
}

// ErrInvalidConfig is matched by errors from [New].
var ErrInvalidConfig = errors.New("worker: invalid config")

// MinAckWait is the shortest AckWait a worker accepts: lanes heartbeat
// every third of it, and a shorter one lets a brief pause or network
// hiccup hand a held message to a second worker.
const MinAckWait = 2 * time.Second

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
	setDefault(&cfg.MaxThrottles, 6)
	setDefault(&cfg.MaxRedeliveries, 100)
	setDefault(&cfg.HoldMax, 10*time.Second)
	setDefault(&cfg.RequestTimeout, 10*time.Second)
	setDefault(&cfg.MaxElapsed, time.Hour)
	setDefault(&cfg.AckWait, 30*time.Second)
	setDefault(&cfg.FetchWait, 2*time.Second)
	setDefault(&cfg.LaneIdle, 10*time.Second)
	setDefault(&cfg.ScanInterval, 10*time.Second)
	setDefault(&cfg.SweepInterval, 30*time.Second)
	setDefault(&cfg.PoolRetry, time.Hour)
	setDefault(&cfg.Backoff.Initial, time.Second)
	setDefault(&cfg.Backoff.Max, 5*time.Minute)
	setDefault(&cfg.Backoff.Multiplier, 2)
	setDefault(&cfg.Backoff.Jitter, 0.5)
	if cfg.AckWait < MinAckWait {
		return nil, fmt.Errorf("%w: AckWait %s is below the minimum %s", ErrInvalidConfig, cfg.AckWait, MinAckWait)
	}
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
	w := &Worker{js: js, cfg: cfg, log: cfg.Logger, m: cfg.Metrics, scanNow: make(chan struct{}, 1), creates: make(chan struct{}, consumerCreates),
		holder: cfg.Name + "/" + strconv.FormatUint(rand.Uint64(), 36)}
	set, err := newRobotSet(cfg.Robots, cfg.Concurrency, nil)
	if err != nil {
		return nil, err
	}
	w.set.Store(set)
	w.setPools(set.pools)
	w.cfg.Robots = nil // the set holds them; Reload replaces it
	return w, nil
}

func setDefault[T int | float64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// Run creates the streams, then delivers until ctx is cancelled, and
// drains (see the package doc). It makes no call per robot at start: lanes
// start as robots get messages. It returns nil after a clean drain, or the
// error that kept it from starting.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.untilStarted(ctx, "create the streams", func(ctx context.Context) error {
		return w.cfg.Topology.Ensure(ctx, w.js)
	}); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started: nothing to drain
		}
		return startErr(err)
	}
	if ok, err := w.cfg.Topology.Announces(ctx, w.js); err == nil && !ok {
		w.log.Warn("the outbound stream does not announce its messages (created before botrelay asked for it, on a server that cannot add it in place): lanes start at the scans only",
			"stream", w.cfg.Topology.OutStream(), "scan_interval", w.cfg.ScanInterval)
	}
	if w.owner == nil { // a test may have set its own
		w.owner = w.newOwner()
	}
	if w.cfg.Presence != nil {
		// Before any consumer exists, so no other worker's sweep sees one
		// of them unannounced.
		w.announce(ctx)
	}
	var sub *nats.Subscription
	if err := w.untilStarted(ctx, "listen for work", func(ctx context.Context) (err error) {
		sub, err = w.subscribeWork(ctx)
		return err
	}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return startErr(err)
	}
	w.started.Store(true)
	w.log.Info("worker started", "worker", w.cfg.Name, "robots", len(w.set.Load().byName), "concurrency", w.cfg.Concurrency)
	var wg sync.WaitGroup
	wg.Go(func() { w.scanLoop(ctx) })
	if w.cfg.SweepInterval > 0 || w.cfg.Presence != nil {
		wg.Go(func() { w.sweepLoop(ctx) })
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
	wg.Wait()
	w.lanes.close()
	w.log.Info("worker drained", "worker", w.cfg.Name)
	return nil
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

// webhookHost is the host a robot's requests go to ("" when the URL does
// not parse: such robots share one semaphore).
func webhookHost(webhook string) string {
	u, err := url.Parse(webhook)
	if err != nil {
		return ""
	}
	return u.Host
}
