package worker_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/worker"
)

// lastWorker is the worker r started last.
func (r *rig) lastWorker() *worker.Worker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.workers[len(r.workers)-1]
}

// fastLimit lets a test's robots post as fast as the worker goes.
var fastLimit = limiter.Limit{Max: 1000, Window: time.Second}

// More robots than the server's default consumer limit (1,000 per stream
// on nats-server 2.15) are all served: each message delivered exactly
// once, none left in the stream.
func TestMoreThanAThousandRobotsAllDelivered(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	const n = 1500
	envs := make([]*envelope.Envelope, 0, n)
	for i := range n {
		name := fmt.Sprintf("fleet-%04d", i)
		r.addRobot(robotsim.PlatformPOPO, name, "sec", "sec", nil, fastLimit)
	}
	start := time.Now()
	r.startWorker(func(c *worker.Config) { c.LaneIdle = 2 * time.Second })
	for i := range n {
		env := envelope.New(fmt.Sprintf("fleet-%04d", i), text(fmt.Sprintf("hello %d", i)))
		envs = append(envs, env)
		r.publish(env)
	}
	r.waitDelivered(envs, 90*time.Second)
	t.Logf("%d robots, one message each: all delivered %s after the worker started", n, time.Since(start).Round(time.Millisecond))
	require.Equal(t, n, r.countEvents("delivered"))
	for i := range n {
		name := fmt.Sprintf("fleet-%04d", i)
		got := r.sim.Received(name)
		require.Len(t, got, 1, name)
		require.Equal(t, fmt.Sprintf("hello %d", i), got[0].Content, name)
	}
	require.Zero(t, r.outPending())
	require.NoError(t, r.lastWorker().Healthy())
}

// idleTraffic starts a worker with robots idle robots on a server of its
// own and returns the messages the server saw (in + out) over idle.
func idleTraffic(t *testing.T, robots int, idle time.Duration) uint64 {
	ns := testenv.StartNATS(t)
	r := newRig(t, ns.ClientURL(), robotsim.Config{})
	for i := range robots {
		name := fmt.Sprintf("idle-%05d", i)
		r.robots = append(r.robots, worker.Robot{
			Robot: delivery.Robot{Name: name, Platform: robotsim.PlatformPOPO, Webhook: r.sim.WebhookURL(name)},
			Limit: popoLimit,
		})
	}
	r.startWorker(func(c *worker.Config) {
		c.FetchWait = 100 * time.Millisecond
		c.ScanInterval = 500 * time.Millisecond
		c.LaneIdle = 300 * time.Millisecond
	})
	time.Sleep(time.Second) // started, first scan and sweep done
	before := varzMsgs(t, ns)
	time.Sleep(idle)
	return varzMsgs(t, ns) - before
}

func varzMsgs(t *testing.T, ns *server.Server) uint64 {
	v, err := ns.Varz(nil)
	require.NoError(t, err)
	return uint64(v.InMsgs + v.OutMsgs)
}

// A worker's idle traffic does not grow with its fleet: ten times the
// idle robots make (within a few messages of timing) the same traffic,
// the scans' and the sweep's, a constant.
func TestIdleTrafficDoesNotGrowWithFleet(t *testing.T) {
	const idle = 3 * time.Second
	small := idleTraffic(t, 200, idle)
	large := idleTraffic(t, 2000, idle)
	t.Logf("NATS messages (in+out) over %s idle: 200 robots %d, 2,000 robots %d", idle, small, large)
	// The sweep (every 200ms here) and the scan (every 500ms) make a few
	// requests each, whatever the fleet; a lane per robot would make
	// thousands (a pull per robot per FetchWait).
	require.Less(t, large, uint64(150))
	diff := int64(large) - int64(small)
	require.LessOrEqual(t, max(diff, -diff), int64(20), "idle traffic grew with the fleet: %d vs %d", small, large)
}

// A robot's lane stops after LaneIdle without messages and starts again on
// the next publish; messages published around the moment lanes stop are
// each delivered exactly once, without waiting for a scan.
func TestLaneStopsWhenIdleAndRestarts(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "blinker", "sec", "sec", nil, fastLimit)
	const laneIdle, fetchWait = 200 * time.Millisecond, 50 * time.Millisecond
	r.startWorker(func(c *worker.Config) {
		c.LaneIdle, c.FetchWait = laneIdle, fetchWait
		c.ScanInterval = time.Hour // only the announcements start lanes
		c.SweepInterval = -1
	})
	w := r.lastWorker()
	first := envelope.New("blinker", text("first"))
	r.publish(first)
	r.waitDelivered([]*envelope.Envelope{first}, 10*time.Second)
	testenv.Eventually(t, 5*time.Second, func() bool { return w.Lanes() == 0 }, "idle lane stopped")
	// Its consumer went with it (not left to the server's InactiveThreshold,
	// which is far longer): after a fan-out the stream keeps no consumers
	// of idle robots.
	testenv.Eventually(t, 2*time.Second, func() bool {
		_, err := r.js.Consumer(context.Background(), r.topo.OutStream(), r.topo.ConsumerName("blinker"))
		return errors.Is(err, jetstream.ErrConsumerNotFound)
	}, "the idle robot's consumer is deleted")

	second := envelope.New("blinker", text("second"))
	r.publish(second)
	r.waitDelivered([]*envelope.Envelope{second}, 5*time.Second)

	// Publishes spaced around LaneIdle (+ a pull) land before, while and
	// after the lane decides to stop.
	want := []string{"first", "second"}
	var envs []*envelope.Envelope
	stops := 0
	for i := range 40 {
		gap := laneIdle - 30*time.Millisecond + rand.N(fetchWait+60*time.Millisecond)
		time.Sleep(gap)
		if w.Lanes() == 0 {
			stops++
		}
		env := envelope.New("blinker", text(fmt.Sprintf("race-%02d", i)))
		envs = append(envs, env)
		want = append(want, fmt.Sprintf("race-%02d", i))
		r.publish(env)
	}
	r.waitDelivered(envs, 10*time.Second)
	p := r.waitExactly("blinker", want...)
	require.Empty(t, p.Refused)
	require.Len(t, r.sim.Requests("blinker"), len(want), "one request per message")
	t.Logf("lane found stopped before %d of 40 publishes", stops)
	require.Positive(t, stops, "the lane never stopped between publishes")
}

// Reload adds, changes and removes robots while the worker runs, and keeps
// the old set when the new one is invalid.
func TestReload(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	keep := r.addRobot(robotsim.PlatformPOPO, "keep", "sec", "sec", nil, fastLimit)
	r.addRobot(robotsim.PlatformPOPO, "gone", "sec", "sec", nil, fastLimit)
	// Registered with the simulator only: the robot added by the reload,
	// and the webhook "keep" moves to.
	require.NoError(t, r.sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "added", Secret: "sec", Limit: 1000}))
	require.NoError(t, r.sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "moved", Secret: "sec", Limit: 1000}))
	added := worker.Robot{Robot: delivery.Robot{Name: "added", Platform: robotsim.PlatformPOPO, Webhook: r.sim.WebhookURL("added"), Secret: "sec"},
		Limit: fastLimit, CoolOff: time.Second}
	r.startWorker(func(c *worker.Config) {
		c.LaneIdle = time.Minute // lanes stop by the reload only
		c.ScanInterval = time.Hour
		c.SweepInterval = -1 // a removed robot's messages stay queued
	})
	w := r.lastWorker()
	for _, name := range []string{"keep", "gone"} {
		env := envelope.New(name, text("before "+name))
		r.publish(env)
		r.waitDelivered([]*envelope.Envelope{env}, 10*time.Second)
	}
	require.Equal(t, 2, w.Lanes())
	// Queued before the reload: only the reload's scan can start its lane.
	early := envelope.New("added", text("queued for added"))
	r.publish(early)

	t.Run("invalid keeps the old set", func(t *testing.T) {
		err := w.Reload([]worker.Robot{keep, keep})
		require.ErrorIs(t, err, worker.ErrInvalidConfig)
		err = w.Reload([]worker.Robot{{Robot: delivery.Robot{Name: "nolimit"}}})
		require.ErrorIs(t, err, worker.ErrInvalidConfig)
		require.ErrorIs(t, w.Reload(nil), worker.ErrInvalidConfig)
		require.Equal(t, []string{"gone", "keep"}, w.Robots())
		require.Equal(t, uint64(1), r.queuedFor("added"), "not served")
	})

	moved := keep
	moved.Webhook = r.sim.WebhookURL("moved")
	// "gone" is busy with a slow answer when it is removed: that message
	// finishes, the next one stays queued.
	r.sim.InjectFault("gone", robotsim.Fault{Delay: time.Second})
	inFlight := envelope.New("gone", text("in flight at the reload"))
	r.publish(inFlight)
	testenv.Eventually(t, 5*time.Second, func() bool { return r.sim.Stats("gone").Requests == 2 }, "gone: request in flight")
	require.NoError(t, w.Reload([]worker.Robot{moved, added}))
	require.Equal(t, []string{"added", "keep"}, w.Robots())

	t.Run("add", func(t *testing.T) {
		r.waitDelivered([]*envelope.Envelope{early}, 10*time.Second)
		later := envelope.New("added", text("published after"))
		r.publish(later)
		r.waitExactly("added", "queued for added", "published after")
	})
	t.Run("change", func(t *testing.T) {
		env := envelope.New("keep", text("to the new webhook"))
		r.publish(env)
		r.waitExactly("moved", "to the new webhook")
		r.waitExactly("keep", "before keep")
	})
	t.Run("remove", func(t *testing.T) {
		r.waitDelivered([]*envelope.Envelope{inFlight}, 10*time.Second)
		after := envelope.New("gone", text("after the removal"))
		r.publish(after)
		testenv.Eventually(t, 5*time.Second, func() bool { return w.Lanes() == 2 }, "gone's lane stopped")
		time.Sleep(500 * time.Millisecond)
		var got []string
		for _, rc := range r.sim.Received("gone") {
			got = append(got, rc.Content)
		}
		require.Equal(t, []string{"before gone", "in flight at the reload"}, got)
		require.Equal(t, uint64(1), r.queuedFor("gone"), "the removed robot's message stays queued")
		require.Empty(t, r.eventsFor(after.ID))
	})
	require.NoError(t, w.Healthy())
}

// A worker configured with 20,000 robots makes no call per robot at start:
// it serves a message within seconds, and the server answered a handful of
// API requests.
func TestStartWith20000Robots(t *testing.T) {
	ns := testenv.StartNATS(t)
	r := newRig(t, ns.ClientURL(), robotsim.Config{})
	const n = 20000
	for i := range n - 1 {
		name := fmt.Sprintf("big-%05d", i)
		r.robots = append(r.robots, worker.Robot{
			Robot: delivery.Robot{Name: name, Platform: robotsim.PlatformPOPO, Webhook: r.sim.WebhookURL(name)},
			Limit: popoLimit,
		})
	}
	r.addRobot(robotsim.PlatformPOPO, "last", "sec", "sec", nil, fastLimit)
	apiBefore := jsAPITotal(t, ns)
	start := time.Now()
	r.startWorker(nil)
	env := envelope.New("last", text("served"))
	r.publish(env)
	r.waitDelivered([]*envelope.Envelope{env}, 15*time.Second)
	took := time.Since(start)
	api := jsAPITotal(t, ns) - apiBefore
	t.Logf("20,000 robots: first message delivered %s after start; %d JetStream API requests", took.Round(time.Millisecond), api)
	require.Less(t, took, 5*time.Second)
	require.Less(t, api, uint64(100), "no call per robot")
}

func jsAPITotal(t *testing.T, ns *server.Server) uint64 {
	v, err := ns.Varz(nil)
	require.NoError(t, err)
	return v.JetStream.Stats.API.Total
}

// pullRequests counts the pull requests made to robot's consumer, seen by
// a plain subscriber on the JetStream API subject they are sent to.
func pullRequests(t *testing.T, r *rig, robot string) func() int {
	t.Helper()
	subj := fmt.Sprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s", r.topo.OutStream(), r.topo.ConsumerName(robot))
	var mu sync.Mutex
	n := 0
	sub, err := r.nc.Subscribe(subj, func(*nats.Msg) { mu.Lock(); n++; mu.Unlock() })
	require.NoError(t, err)
	require.NoError(t, r.nc.Flush())
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return func() int {
		require.NoError(t, r.nc.Flush())
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// A robot with a backlog is served through one long-lived pull: a
// request per batch of messages, not one per message (a Fetch per
// message made the server the bound on a busy fleet). Its messages are
// posted exactly once each, in order.
func TestBusyLaneKeepsOnePull(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "busy", "sec", "sec", nil, fastLimit)
	const n = 200
	envs := make([]*envelope.Envelope, n)
	for i := range envs {
		envs[i] = envelope.New("busy", text(fmt.Sprintf("m%03d", i)))
		r.publish(envs[i])
	}
	requests := pullRequests(t, r, "busy")
	r.startWorker(func(c *worker.Config) { c.LaneIdle, c.ConsumerLanes = time.Minute, true })
	r.waitExactly("busy", contents(envs)...)
	// The first message comes by a Fetch (one request); it shows a backlog
	// behind it, so the lane opens its pull: a request for pullBatch (32)
	// messages, renewed at half of it.
	got := requests()
	t.Logf("%d messages, %d pull requests", n, got)
	require.LessOrEqual(t, got, 1+n/16+2, "pull requests for %d messages", n)
	require.GreaterOrEqual(t, got, 2, "a Fetch, then the long-lived pull")
}

// A robot with one message is served by one Fetch: a lane does not open
// a long-lived pull for a robot without a backlog (a fan-out gives
// thousands of robots one message each).
func TestSingleMessageLaneFetchesOnce(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "single", "sec", "sec", nil, fastLimit)
	requests := pullRequests(t, r, "single")
	// FetchWait longer than the checks below: the lane's next Fetch is
	// still waiting when they are made.
	r.startWorker(func(c *worker.Config) {
		c.LaneIdle = time.Minute
		c.FetchWait = 5 * time.Second
		c.ConsumerLanes = true
	})
	env := envelope.New("single", text("only"))
	r.publish(env)
	r.waitExactly("single", "only")
	// The Fetch that took the message, and the lane's next one, waiting.
	require.Eventually(t, func() bool { return requests() == 2 }, 2*time.Second, 10*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, 2, requests())
}
