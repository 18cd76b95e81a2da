package worker_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
	"github.com/botrelay/botrelay/pkg/worker"
)

// rig is one end-to-end installation: a JetStream server, the robot
// simulator over HTTP, real Redis for the limiter and the ledger, and any
// number of workers.
type rig struct {
	t      testing.TB
	url    string
	nc     *nats.Conn
	js     jetstream.JetStream
	topo   stream.Topology
	sim    *robotsim.Server
	pub    *publisher.Publisher
	prefix string
	robots []worker.Robot

	// redis overrides testenv.RedisAddr() for the workers (a private server).
	redis string

	mu     sync.Mutex
	events []worker.Event
	// workers are the workers started, in order.
	workers []*worker.Worker
}

func (r *rig) redisAddr() string {
	if r.redis != "" {
		return r.redis
	}
	return testenv.RedisAddr()
}

func newRig(t testing.TB, natsURL string, simCfg robotsim.Config) *rig {
	t.Helper()
	if natsURL == "" {
		natsURL = testenv.NATSURL(t)
	}
	nc, js := testenv.Connect(t, natsURL)
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(context.Background(), js))
	sim := robotsim.NewServer(simCfg)
	t.Cleanup(sim.Close)
	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	rdb, prefix := testenv.Redis(t)
	// The limiter's restart guard holds every robot for one window when
	// the Redis state is new; tests start from a known, empty history.
	require.NoError(t, rdb.Set(context.Background(), prefix+":epoch", "0", 0).Err())
	return &rig{t: t, url: natsURL, nc: nc, js: js, topo: topo, sim: sim, pub: pub, prefix: prefix}
}

// addRobot registers a robot with the simulator (token = name) and returns
// its worker configuration. workerSecret may differ from the simulator's.
func (r *rig) addRobot(platform, name, secret, workerSecret string, keywords []string, lim limiter.Limit) worker.Robot {
	r.t.Helper()
	require.NoError(r.t, r.sim.AddRobot(robotsim.Robot{Platform: platform, Token: name, Secret: secret, Keywords: keywords, Limit: lim.Max}))
	rb := worker.Robot{
		Robot:   delivery.Robot{Name: name, Platform: platform, Webhook: r.sim.WebhookURL(name), Secret: workerSecret, Keywords: keywords},
		Limit:   lim,
		CoolOff: time.Second,
	}
	r.robots = append(r.robots, rb)
	return rb
}

// startWorker runs a worker over its own NATS connection and Redis client
// (as a separate process would) until the returned stop is called.
func (r *rig) startWorker(mod func(*worker.Config)) (stop func()) {
	return r.startWorkerKillable(mod).stop
}

// handle controls a running worker.
type handle struct {
	stop func() // drain and wait
	kill func() // cut its NATS connection at once (a crash), then stop
}

func (r *rig) startWorkerKillable(mod func(*worker.Config)) handle {
	r.t.Helper()
	nc, js := testenv.Connect(r.t, r.url)
	base := redis.NewClient(&redis.Options{Addr: r.redisAddr()})
	var rdb redis.UniversalClient = base
	if os.Getenv("BOTRELAY_TEST_REDIS") != "plain" {
		// As cmd/worker does (--redis-autopipeline): the lanes' commands
		// batched into pipelines. BOTRELAY_TEST_REDIS=plain runs the
		// suite on a plain client.
		// Its own client, never retrying a batch (cmd/worker's pipelined).
		own := redis.NewClient(&redis.Options{Addr: r.redisAddr(), MaxRetries: -1, DialerRetries: 1})
		cfg := redis.DefaultBlockingAutoPipelineOptions()
		cfg.MaxBatchSize = 64
		ap, err := own.AutoPipelineWithOptions(cfg)
		require.NoError(r.t, err)
		r.t.Cleanup(func() { _ = own.Close() })
		rdb = ap
	}
	lim, err := limiter.NewRedis(rdb, limiter.WithPrefix(r.prefix))
	require.NoError(r.t, err)
	snd, err := delivery.New(delivery.WithTimeout(2 * time.Second))
	require.NoError(r.t, err)
	led := ledger.NewRedis(rdb, r.prefix, time.Hour)
	cfg := worker.Config{
		Topology:      r.topo,
		Robots:        r.robots,
		Sender:        snd,
		Limiter:       lim,
		Ledger:        led,
		Presence:      led,
		Backoff:       worker.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		AckWait:       2 * time.Second,
		FetchWait:     300 * time.Millisecond,
		SweepInterval: 200 * time.Millisecond,
		Logger:        testLogger(),
		Observe:       r.record,
		// BOTRELAY_TEST_LANES=consumer runs the rig's workers with a
		// consumer per robot (the suite under the other lane mode).
		ConsumerLanes: os.Getenv("BOTRELAY_TEST_LANES") == "consumer",
	}
	if mod != nil {
		mod(&cfg)
	}
	w, err := worker.New(js, cfg)
	require.NoError(r.t, err)
	r.mu.Lock()
	r.workers = append(r.workers, w)
	r.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(r.t, err)
			case <-time.After(30 * time.Second):
				r.t.Error("worker did not drain within 30s")
			}
			nc.Close()
			_ = base.Close() // and the autopipeliner
		})
	}
	r.t.Cleanup(stop)
	return handle{stop: stop, kill: func() { nc.Close(); stop() }}
}

func testLogger() *slog.Logger {
	level := slog.LevelError + 4 // quiet: failures are asserted, not read
	if os.Getenv("BOTRELAY_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func (r *rig) record(ev worker.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

// eventsFor returns the events of one envelope id, in order.
func (r *rig) eventsFor(id string) []worker.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []worker.Event
	for _, ev := range r.events {
		if ev.EnvelopeID == id {
			out = append(out, ev)
		}
	}
	return out
}

// waitDelivered waits until each envelope's last event is "delivered" (the
// simulator records a message before the worker reports the outcome) and
// returns that event per envelope.
func (r *rig) waitDelivered(envs []*envelope.Envelope, timeout time.Duration) []worker.Event {
	r.t.Helper()
	out := make([]worker.Event, len(envs))
	// The delivered event need not be the last: with direct lanes another
	// lane that read the message before its delete reports a duplicate
	// (or a wait for the poster's claim) after it; posts are checked by
	// the simulator.
	testenv.Eventually(r.t, timeout, func() bool {
		for i, env := range envs {
			found := false
			for _, ev := range r.eventsFor(env.ID) {
				if ev.Kind == "delivered" {
					out[i], found = ev, true
				}
			}
			if !found {
				return false
			}
		}
		return true
	}, "every envelope reported delivered")
	return out
}

func (r *rig) countEvents(kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

// eventsOf returns the events of kind, in the order observed.
func (r *rig) eventsOf(kind string) []worker.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []worker.Event
	for _, ev := range r.events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

func (r *rig) publish(env *envelope.Envelope) {
	r.t.Helper()
	_, err := r.pub.Publish(context.Background(), env)
	require.NoError(r.t, err)
}

func (r *rig) deadLetters() []deadletter.Entry {
	r.t.Helper()
	es, err := deadletter.List(context.Background(), r.js, r.topo, "", 0)
	require.NoError(r.t, err)
	return es
}

// expect is what a robot must end up with, for [rig.waitPosts].
type expect struct {
	// key names a request's message; nil: its content.
	key func(robotsim.Request) string
	// repeats is how many requests in all may repeat a message the
	// platform already had (0: none).
	repeats int
	// queued: messages stay queued for the robot on purpose, so do not
	// wait for its subject to empty.
	queued bool
	// timeout defaults to a minute.
	timeout time.Duration
}

// waitExactly waits until robot was posted the messages with the given
// contents and its subject holds no message any more (each settled: none
// left to post again), then asserts its request log: the messages the
// platform took are exactly these, in this order of first appearance, none
// posted again once taken (a DingTalk repeat dropped by msgUuid counts).
// It returns the log, for the refused and faulted requests a test expects.
func (r *rig) waitExactly(robot string, contents ...string) testenv.Posts {
	r.t.Helper()
	return r.waitPosts(robot, expect{}, contents...)
}

// waitPosts is [rig.waitExactly] with the expectation's options.
func (r *rig) waitPosts(robot string, e expect, want ...string) testenv.Posts {
	r.t.Helper()
	if e.timeout == 0 {
		e.timeout = time.Minute
	}
	deadline := time.Now().Add(e.timeout)
	for {
		p := testenv.SplitPosts(r.sim.Requests(robot), e.key)
		queued := uint64(0)
		if !e.queued {
			queued = r.queuedFor(robot)
		}
		if p.Has(want) && queued == 0 {
			require.NoError(r.t, p.Check(want, e.repeats), "robot %s", robot)
			return p
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out after %s: robot %s: want %d messages posted and none queued; posted %q, %d queued",
				e.timeout, robot, len(want), p.Keys(p.Firsts), queued)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// queuedFor returns how many messages for robot remain in the outbound
// stream (not yet acked or dead-lettered).
func (r *rig) queuedFor(robot string) uint64 {
	r.t.Helper()
	ctx := context.Background()
	s, err := r.js.Stream(ctx, r.topo.OutStream())
	require.NoError(r.t, err)
	subj := r.topo.OutSubject(robot)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
	require.NoError(r.t, err)
	return info.State.Subjects[subj]
}

// contents returns the text contents of envs, in order.
func contents(envs []*envelope.Envelope) []string {
	out := make([]string, len(envs))
	for i, env := range envs {
		out[i] = env.Message.PlainText()
	}
	return out
}

// ids returns the ids of envs, in order.
func ids(envs []*envelope.Envelope) []string {
	out := make([]string, len(envs))
	for i, env := range envs {
		out[i] = env.ID
	}
	return out
}

// waitDead waits until n dead letters exist.
func (r *rig) waitDead(n int, timeout time.Duration) []deadletter.Entry {
	r.t.Helper()
	var es []deadletter.Entry
	testenv.Eventually(r.t, timeout, func() bool {
		var err error
		es, err = deadletter.List(context.Background(), r.js, r.topo, "", 0)
		return err == nil && len(es) >= n
	}, "want %d dead letters", n)
	return es
}

// waitDeadExactly waits until every message of the outbound stream is
// settled, with at least n dead letters, and asserts there are exactly n.
func (r *rig) waitDeadExactly(n int, timeout time.Duration) []deadletter.Entry {
	r.t.Helper()
	var es []deadletter.Entry
	testenv.Eventually(r.t, timeout, func() bool {
		var err error
		es, err = deadletter.List(context.Background(), r.js, r.topo, "", 0)
		return err == nil && len(es) >= n && r.outPending() == 0
	}, "want %d dead letters and every message settled", n)
	require.Len(r.t, es, n, "dead letters: %+v", es)
	return es
}

// outPending returns how many messages remain in the outbound stream.
func (r *rig) outPending() uint64 {
	s, err := r.js.Stream(context.Background(), r.topo.OutStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0
	}
	require.NoError(r.t, err)
	info, err := s.Info(context.Background())
	require.NoError(r.t, err)
	return info.State.Msgs
}

// countingLimiter counts the errors of the limiter it wraps.
type countingLimiter struct {
	limiter.Limiter
	errs *atomic.Int64
}

func (l countingLimiter) Reserve(ctx context.Context, robot string, lim limiter.Limit) (limiter.Decision, error) {
	d, err := l.Limiter.Reserve(ctx, robot, lim)
	if err != nil {
		l.errs.Add(1)
	}
	return d, err
}

func newSender(t *testing.T) worker.Sender {
	t.Helper()
	snd, err := delivery.New(delivery.WithTimeout(2 * time.Second))
	require.NoError(t, err)
	return snd
}

func text(s string) envelope.Message { return envelope.Message{Text: &envelope.Text{Content: s}} }

var (
	dingLimit = limiter.Limit{Max: 20, Window: time.Minute, Margin: time.Second}
	popoLimit = limiter.Limit{Max: 60, Window: time.Minute, Margin: time.Second}
)
