package worker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
	"github.com/botrelay/botrelay/pkg/worker"
)

// requestContents returns the contents of the requests robot received, in
// arrival order, repeats and refusals included.
func requestContents(sim *robotsim.Server, robot string) []string {
	var out []string
	for _, rq := range sim.Requests(robot) {
		out = append(out, rq.Content)
	}
	return out
}

// A webhook slow to take a connection (its TLS front end stalls) must not
// make a granted slot arrive late: the request is abandoned unsent at its
// write deadline (reservation + margin), its slot spent and no attempt
// counted, and the message waits for its next slot. Without the bound, the
// first slots' requests land next to the later ones inside one window.
func TestSlowConnectDoesNotBreach(t *testing.T) {
	const window = time.Second
	r := newRig(t, "", robotsim.Config{Window: window, Ban: time.Minute})
	r.sim.Close()
	r.sim = robotsim.NewServer(robotsim.Config{Window: window, Ban: time.Minute}, robotsim.WithTLS(), robotsim.WithAcceptDelay(600*time.Millisecond))
	lim := limiter.Limit{Max: 2, Window: window, Margin: 150 * time.Millisecond}
	r.addRobot(robotsim.PlatformPOPO, "slow", "sec", "sec", nil, lim)
	envs := r.publishN("slow", "m", 4)

	client := delivery.NewHTTPClient(2 * time.Second)
	client.Transport.(*http.Transport).TLSClientConfig = r.sim.TLSClientConfig()
	snd, err := delivery.New(delivery.WithHTTPClient(client))
	require.NoError(t, err)
	r.startWorker(func(c *worker.Config) { c.Sender = snd })
	// The front end recovers after a while.
	testenv.Eventually(t, 10*time.Second, func() bool { return r.countEvents("not_sent") >= 2 }, "requests abandoned unsent")
	r.sim.SetAcceptDelay(0)

	r.waitDelivered(envs, 30*time.Second)
	st := r.sim.Stats("slow")
	require.Zero(t, st.Breaches, "%+v", st)
	require.Equal(t, []string{"m 0", "m 1", "m 2", "m 3"}, requestContents(r.sim, "slow"), "each posted once, in order, nothing abandoned arrived")
	for _, ev := range r.waitDelivered(envs, time.Second) {
		require.Equal(t, 1, ev.Attempts, "an abandoned request is not an attempt")
	}
}

// A message the platform keeps throttling (another sender saturates the
// robot) is dead-lettered as throttled after MaxThrottles cool-offs, with
// the platform's errcode, and counted; the robot's next message is then
// served.
func TestAlwaysThrottledIsDeadLettered(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformDingTalk, "saturated", "sec", "sec", nil, popoLimit)
	r.robots[0].CoolOff = 50 * time.Millisecond
	r.sim.InjectFault("saturated", robotsim.Fault{Body: `{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`, Count: 3})
	stuck := envelope.New("saturated", text("never gets through"))
	next := envelope.New("saturated", text("after it"))
	r.publish(stuck)
	r.publish(next)
	reg := prometheus.NewRegistry()
	r.startWorker(func(c *worker.Config) { c.MaxThrottles = 3; c.Metrics = worker.NewMetrics(reg) })

	dl := r.waitDead(1, 20*time.Second)[0].Record
	require.Equal(t, deadletter.ReasonThrottled, dl.Reason)
	require.Equal(t, stuck.ID, dl.Envelope.ID)
	require.Equal(t, 130101, dl.ErrCode, "the errcode is kept")
	require.Contains(t, dl.ErrMsg, "send too fast")
	require.Zero(t, dl.Attempts, "throttles are not attempts")
	r.waitDelivered([]*envelope.Envelope{next}, 20*time.Second)
	var outcomes []string
	for _, rq := range r.sim.Requests("saturated") {
		outcomes = append(outcomes, rq.Outcome+":"+rq.Content)
	}
	require.Equal(t, []string{robotsim.RequestFaulted + ":", robotsim.RequestFaulted + ":", robotsim.RequestFaulted + ":",
		robotsim.RequestAccepted + ":after it"}, outcomes, "three throttled posts of the first, then the next one")
	require.Equal(t, 2, r.countEvents("throttled"), "two cool-offs; the third throttle dead-letters it")
	require.Equal(t, 1.0, counterValue(t, reg, "botrelay_dead_letters_total", "saturated", "throttled"))
}

// counterValue returns the value of counter name with labels robot and
// reason in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name, robot, reason string) float64 {
	t.Helper()
	v := metricValue(t, reg, name, map[string]string{"robot": robot, "reason": reason})
	require.NotEqual(t, -1.0, v, "%s{robot=%q,reason=%q} not found", name, robot, reason)
	return v
}

// A server-requested delay is capped at the backoff's maximum (here
// 200ms): an anti-abuse answer asking for 10^9 seconds does not stall the
// robot, and asking to wait is not an attempt.
func TestServerRequestedWaitIsCapped(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformDingTalk, "patient", "sec", "sec", nil, popoLimit)
	r.sim.InjectFault("patient", robotsim.Fault{Body: `{"status":1111,"wait":1000000000,"msg":"busy"}`, Count: 2})
	env := envelope.New("patient", text("later, then"))
	r.publish(env)
	start := time.Now()
	r.startWorker(nil)
	ev := r.waitDelivered([]*envelope.Envelope{env}, 15*time.Second)[0]
	require.Less(t, time.Since(start), 10*time.Second)
	require.Equal(t, 1, ev.Attempts, "waiting is not an attempt")
	waits := r.eventsOf("throttled")
	require.Len(t, waits, 2)
	for _, w := range waits {
		require.Equal(t, 200*time.Millisecond, w.Delay, "capped at the backoff maximum")
		require.Equal(t, delivery.Wait, w.Result.Outcome)
	}
	require.Empty(t, r.deadLetters())
}

// DingTalk 90030 (a quota used up) is a wait, not a failed attempt: it is
// not dead-lettered after one attempt, and when it keeps coming the dead
// letter (reason throttled) keeps errcode 90030.
func TestQuotaErrorWaitsAndKeepsErrcode(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformDingTalk, "quota", "sec", "sec", nil, popoLimit)
	r.sim.InjectFault("quota", robotsim.Fault{Body: `{"errcode":90030,"errmsg":"webhook over limit"}`, Count: 2})
	first := envelope.New("quota", text("waits out the quota"))
	r.publish(first)
	r.startWorker(func(c *worker.Config) { c.MaxAttempts = 1; c.MaxThrottles = 3 })
	ev := r.waitDelivered([]*envelope.Envelope{first}, 15*time.Second)[0]
	require.Equal(t, 1, ev.Attempts)
	require.Empty(t, r.deadLetters())

	r.sim.InjectFault("quota", robotsim.Fault{Body: `{"errcode":90030,"errmsg":"webhook over limit"}`, Count: 3})
	second := envelope.New("quota", text("quota never comes back"))
	r.publish(second)
	dl := r.waitDead(1, 15*time.Second)[0].Record
	require.Equal(t, second.ID, dl.Envelope.ID)
	require.Equal(t, deadletter.ReasonThrottled, dl.Reason)
	require.Equal(t, 90030, dl.ErrCode)
}

// panicky panics on one message's content and delivers the others.
type panicky struct {
	worker.Sender
	on string
}

func (p panicky) Deliver(ctx context.Context, rb delivery.Robot, env *envelope.Envelope) delivery.Result {
	if env.Message.Text != nil && env.Message.Text.Content == p.on {
		panic("deliberate test panic for " + rb.Webhook)
	}
	return p.Sender.Deliver(ctx, rb, env)
}

// A panic while handling one message dead-letters it (reason panic, no
// stack or secret in the record) and the worker goes on serving.
func TestPanicIsDeadLettered(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "fragile", "sec", "sec", nil, popoLimit)
	r.addRobot(robotsim.PlatformPOPO, "sturdy", "sec", "sec", nil, popoLimit)
	bad := envelope.New("fragile", text("boom"))
	after := envelope.New("fragile", text("fine"))
	other := envelope.New("sturdy", text("also fine"))
	r.publish(bad)
	r.publish(after)
	snd, err := delivery.New(delivery.WithTimeout(2 * time.Second))
	require.NoError(t, err)
	r.startWorker(func(c *worker.Config) { c.Sender = panicky{Sender: snd, on: "boom"} })
	r.publish(other)
	dl := r.waitDead(1, 15*time.Second)[0].Record
	require.Equal(t, deadletter.ReasonPanic, dl.Reason)
	require.Equal(t, bad.ID, dl.Envelope.ID)
	require.NotContains(t, dl.Detail, "goroutine", "the stack stays in the log")
	require.NotContains(t, dl.Detail, r.sim.WebhookURL("fragile"))
	r.waitDelivered([]*envelope.Envelope{after, other}, 15*time.Second)
	require.Equal(t, []string{"fine"}, requestContents(r.sim, "fragile"))
	require.Equal(t, []string{"also fine"}, requestContents(r.sim, "sturdy"))
}

// A message on a subject whose robot token cannot be a consumer name is
// still swept into the dead-letter stream, and the metric of dead letters
// for unconfigured robots has one series, robot="unknown".
func TestUnsweepableSubjectIsDeadLettered(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "known", "sec", "sec", nil, popoLimit)
	ctx := context.Background()
	for _, robot := range []string{"bad/name", "ünïcode"} {
		_, err := r.js.Publish(ctx, r.topo.OutSubject(robot), []byte(`{"not":"an envelope"}`))
		require.NoError(t, err)
	}
	reg := prometheus.NewRegistry()
	r.startWorker(func(c *worker.Config) { c.Metrics = worker.NewMetrics(reg) })
	es := r.waitDead(2, 15*time.Second)
	var robots []string
	for _, e := range es {
		require.Equal(t, deadletter.ReasonUnknownRobot, e.Record.Reason)
		require.Equal(t, `{"not":"an envelope"}`, string(e.Record.Raw))
		robots = append(robots, e.Record.Robot)
	}
	sort.Strings(robots)
	require.Equal(t, []string{"bad/name", "ünïcode"}, robots)
	require.Zero(t, r.outPending(), "nothing left in the stream")
	require.Equal(t, 2.0, counterValue(t, reg, "botrelay_dead_letters_total", "unknown", "unknown_robot"))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "robot" {
					require.Contains(t, []string{"known", "unknown"}, l.GetValue(), "no series per unconfigured name")
				}
			}
		}
	}
}

// blackhole accepts connections and never answers: a webhook whose host
// takes requests and hangs.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// 40 robots whose webhooks hang beside one healthy robot, with the
// default 32 write slots: the healthy robot's messages are not held up
// (p99 under a second), as a written request waiting for its answer holds
// no slot.
func TestBlackholedRobotsDoNotStallHealthy(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	hole := blackhole(t)
	const holes = 40
	for i := range holes {
		name := fmt.Sprintf("hole-%02d", i)
		r.robots = append(r.robots, worker.Robot{
			Robot: delivery.Robot{Name: name, Platform: robotsim.PlatformPOPO, Webhook: hole + "/open-apis/robots/v1/hook/" + name},
			Limit: popoLimit, CoolOff: time.Second,
		})
	}
	r.addRobot(robotsim.PlatformPOPO, "healthy", "sec", "sec", nil, limiter.Limit{Max: 1000, Window: time.Second})
	for i := range holes {
		r.publishN(fmt.Sprintf("hole-%02d", i), "h", 2)
	}
	var mu sync.Mutex
	published := map[string]time.Time{}
	var lat []time.Duration
	snd, err := delivery.New(delivery.WithTimeout(3 * time.Second))
	require.NoError(t, err)
	r.startWorker(func(c *worker.Config) {
		c.Sender = snd
		c.Observe = func(ev worker.Event) {
			r.record(ev)
			if ev.Robot == "healthy" && ev.Kind == "delivered" {
				mu.Lock()
				lat = append(lat, time.Since(published[ev.EnvelopeID]))
				mu.Unlock()
			}
		}
	})
	time.Sleep(500 * time.Millisecond) // the holes' requests are hanging now
	const n = 20
	for i := range n {
		env := envelope.New("healthy", text(fmt.Sprintf("ok-%d", i)))
		mu.Lock()
		published[env.ID] = time.Now()
		mu.Unlock()
		r.publish(env)
		time.Sleep(50 * time.Millisecond)
	}
	testenv.Eventually(t, 20*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(lat) == n }, "healthy: all delivered")
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	t.Logf("healthy robot beside %d blackholed ones: p50 %s, p99 %s", holes, lat[len(lat)/2], p99)
	require.Less(t, p99, time.Second)
}

// Ids are scoped by robot: the same id sent to two robots is delivered to
// both; sent twice to one robot it is stored, and posted, once.
func TestSameIDScopedByRobot(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "team-a", "sec", "sec", nil, popoLimit)
	r.addRobot(robotsim.PlatformPOPO, "team-b", "sec", "sec", nil, popoLimit)
	ctx := context.Background()
	a := envelope.New("team-a", text("for a"), envelope.WithID("deploy-4711"))
	b := envelope.New("team-b", text("for b"), envelope.WithID("deploy-4711"))
	again := envelope.New("team-a", text("for a, again"), envelope.WithID("deploy-4711"))
	for _, env := range []*envelope.Envelope{a, b} {
		ack, err := r.pub.Publish(ctx, env)
		require.NoError(t, err)
		require.False(t, ack.Duplicate, env.Robot)
	}
	ack, err := r.pub.Publish(ctx, again)
	require.NoError(t, err)
	require.True(t, ack.Duplicate, "the same id to the same robot is stored once")
	r.startWorker(nil)
	testenv.Eventually(t, 15*time.Second, func() bool { return r.countEvents("delivered") == 2 }, "both delivered")
	require.Equal(t, []string{"for a"}, requestContents(r.sim, "team-a"))
	require.Equal(t, []string{"for b"}, requestContents(r.sim, "team-b"))
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, 2, r.countEvents("delivered"))
	require.Zero(t, r.countEvents("duplicate"))
}

// claimAs leaves the ledger as a worker named holder that claimed env's
// message for lease would: in flight, outcome not recorded.
func claimAs(t *testing.T, r *rig, env *envelope.Envelope, holder string, lease time.Duration) {
	t.Helper()
	rdb, _ := testenv.Redis(t)
	led := ledger.NewRedis(rdb, r.prefix, time.Hour)
	c, _, err := led.Claim(context.Background(), stream.MsgID(env.Robot, env.ID), holder, lease, false)
	require.NoError(t, err)
	require.Equal(t, ledger.Claimed, c)
}

// A message another worker holds in flight (it paused past AckWait, so
// JetStream handed the message out again) is not posted while that
// worker's lease runs; once the lease ended without an outcome, the
// robot's on_unknown_outcome decides.
func TestInFlightMessageOfAnotherWorker(t *testing.T) {
	t.Run("held: waits for the lease, then reposts once", func(t *testing.T) {
		r := newRig(t, "", robotsim.Config{})
		r.addRobot(robotsim.PlatformDingTalk, "held", "sec", "sec", nil, popoLimit)
		env := envelope.New("held", text("once"))
		r.publish(env)
		const lease = 1500 * time.Millisecond
		claimAs(t, r, env, "paused-worker", lease)
		start := time.Now()
		r.startWorker(nil)
		testenv.Eventually(t, 10*time.Second, func() bool { return r.countEvents("held") >= 1 }, "the worker saw the other's lease")
		require.Empty(t, r.sim.Requests("held"), "not posted while the other worker may be posting")
		r.waitDelivered([]*envelope.Envelope{env}, 15*time.Second)
		require.GreaterOrEqual(t, time.Since(start), lease)
		require.Equal(t, []string{"once"}, requestContents(r.sim, "held"))
		require.Equal(t, 1, r.countEvents("repost"), "the lease ended without an outcome: reposted (on_unknown_outcome: repost)")
	})
	t.Run("dead_letter policy", func(t *testing.T) {
		r := newRig(t, "", robotsim.Config{})
		r.addRobot(robotsim.PlatformPOPO, "careful", "sec", "sec", nil, popoLimit)
		r.robots[0].OnUnknownOutcome = worker.DeadLetter
		env := envelope.New("careful", text("maybe posted"))
		r.publish(env)
		claimAs(t, r, env, "dead-worker", time.Millisecond)
		time.Sleep(50 * time.Millisecond)
		r.startWorker(nil)
		dl := r.waitDead(1, 15*time.Second)[0].Record
		require.Equal(t, deadletter.ReasonUnknownOutcome, dl.Reason)
		require.Contains(t, dl.Detail, "dead-worker")
		require.Empty(t, r.sim.Requests("careful"), "a gap, not a duplicate")
	})
}

// A permanent failure whose dead-letter publish fails is not posted again
// when the message comes back: only its dead letter is published again,
// with the platform's errcode.
func TestPermanentFailureNotPostedTwice(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformDingTalk, "wrongsecret", "sec", "not-the-secret", nil, popoLimit)
	ctx := context.Background()
	dlq := r.fillDeadLetters()
	env := envelope.New("wrongsecret", text("refused for good"))
	r.publish(env)
	rdb, _ := testenv.Redis(t)
	led := ledger.NewRedis(rdb, r.prefix, time.Hour)
	r.startWorker(nil)
	testenv.Eventually(t, 15*time.Second, func() bool {
		st, err := led.Get(ctx, stream.MsgID("wrongsecret", env.ID))
		return err == nil && st.Permanent != "" && st.Waits >= 1
	}, "the dead-letter publish failed and the message was handed back")
	require.NoError(t, dlq.Purge(ctx))
	dl := r.waitDead(1, 30*time.Second)[0].Record
	require.Equal(t, deadletter.ReasonPermanent, dl.Reason)
	require.Equal(t, 310000, dl.ErrCode)
	require.Equal(t, 1, dl.Attempts)
	require.Len(t, r.sim.Requests("wrongsecret"), 1, "posted once")
}

// AckWait below the floor is refused.
func TestAckWaitFloor(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "x", "sec", "sec", nil, popoLimit)
	_, err := worker.New(r.js, worker.Config{Robots: r.robots, Sender: panicky{}, Limiter: limiter.NewMemory(nil),
		Ledger: ledger.NewMemory(), AckWait: time.Second})
	require.ErrorIs(t, err, worker.ErrInvalidConfig)
	require.ErrorContains(t, err, "AckWait 1s is below the minimum 2s")
}

// Redis out of memory under noeviction: the worker fails closed (nothing
// is posted) and says so: Healthy (behind /readyz) names the out-of-memory
// Redis, until memory is freed.
func TestOutOfMemoryRedisFailsClosedVisibly(t *testing.T) {
	priv := testenv.StartRedis(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: priv.Addr})
	defer rdb.Close()
	require.NoError(t, rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err())
	r := newRig(t, "", robotsim.Config{})
	r.redis = priv.Addr
	require.NoError(t, rdb.Set(ctx, r.prefix+":epoch", "0", 0).Err())
	r.addRobot(robotsim.PlatformPOPO, "starved", "sec", "sec", nil, popoLimit)
	// Fill Redis, then cap it just below what it holds.
	pipe := rdb.Pipeline()
	for i := range 2000 {
		pipe.Set(ctx, fmt.Sprintf("junk:%d", i), strings.Repeat("x", 1024), 0)
	}
	_, err := pipe.Exec(ctx)
	require.NoError(t, err)
	require.NoError(t, rdb.ConfigSet(ctx, "maxmemory", "1mb").Err())

	r.publish(envelope.New("starved", text("waits for memory")))
	var healthErr error
	probe := newHealthProbe(t, r, priv.Addr)
	// (Until it has the streams, the worker reports that it is starting.)
	testenv.Eventually(t, 15*time.Second, func() bool {
		healthErr = probe.Healthy()
		return healthErr != nil && strings.Contains(healthErr.Error(), "out-of-memory")
	}, "the worker reports Redis")
	require.NotContains(t, healthErr.Error(), "starting")
	time.Sleep(300 * time.Millisecond)
	require.Empty(t, r.sim.Requests("starved"), "fail closed: nothing posted without a limiter decision")

	require.NoError(t, rdb.ConfigSet(ctx, "maxmemory", "0").Err())
	r.waitExactly("starved", "waits for memory")
	testenv.Eventually(t, 10*time.Second, func() bool { return probe.Healthy() == nil }, "healthy again")
}

// newHealthProbe runs a worker with the rig's robots on the Redis at addr
// and returns it, to read its health.
func newHealthProbe(t *testing.T, r *rig, addr string) *worker.Worker {
	t.Helper()
	_, js := testenv.Connect(t, r.url)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	lim, err := limiter.NewRedis(rdb, limiter.WithPrefix(r.prefix))
	require.NoError(t, err)
	led := ledger.NewRedis(rdb, r.prefix, time.Hour)
	snd, err := delivery.New(delivery.WithTimeout(2 * time.Second))
	require.NoError(t, err)
	w, err := worker.New(js, worker.Config{Topology: r.topo, Robots: r.robots, Sender: snd, Limiter: lim, Ledger: led,
		FetchWait: 300 * time.Millisecond, SweepInterval: -1, Logger: testLogger(), AckWait: 2 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("probe worker: %v", err)
		}
	})
	return w
}

// fillDeadLetters caps the dead-letter stream at one record and stores
// one (an operator's limit reached), so every dead-letter publish fails
// until the returned stream is purged.
func (r *rig) fillDeadLetters() jetstream.Stream {
	r.t.Helper()
	ctx := context.Background()
	dlq, err := r.js.Stream(ctx, r.topo.DLQStream())
	require.NoError(r.t, err)
	cfg := dlq.CachedInfo().Config
	cfg.MaxMsgs = 1
	_, err = r.js.UpdateStream(ctx, cfg)
	require.NoError(r.t, err)
	require.NoError(r.t, deadletter.Publish(ctx, r.js, r.topo, deadletter.Record{Robot: "other", Raw: []byte("x"),
		Reason: deadletter.ReasonDecode, Subject: r.topo.OutSubject("other"), Sequence: 1}))
	return dlq
}

// A request written and never answered may have reached the platform: for
// a robot whose on_unknown_outcome is dead_letter it is dead-lettered as
// unknown_outcome, not posted again.
func TestUnansweredRequestIsUnknownOutcome(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "hangs", "sec", "sec", nil, popoLimit)
	r.robots[0].OnUnknownOutcome = worker.DeadLetter
	r.sim.InjectFault("hangs", robotsim.Fault{Delay: 3 * time.Second}) // past the rig's 2s request timeout
	env := envelope.New("hangs", text("did it arrive?"))
	r.publish(env)
	r.startWorker(nil)
	dl := r.waitDead(1, 20*time.Second)[0].Record
	require.Equal(t, deadletter.ReasonUnknownOutcome, dl.Reason)
	require.Contains(t, dl.Detail, "written but never answered")
	// The simulator takes the request once its delay has passed: the
	// platform did have it.
	testenv.Eventually(t, 5*time.Second, func() bool { return len(r.sim.Requests("hangs")) == 1 }, "the platform got it")
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, []string{"did it arrive?"}, requestContents(r.sim, "hangs"), "posted once, never again")
}
