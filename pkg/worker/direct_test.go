package worker_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
	"github.com/botrelay/botrelay/pkg/worker"
)

// consumerLanes runs a worker with a consumer per robot: for the tests of
// what only consumer lanes have.
func consumerLanes(c *worker.Config) { c.ConsumerLanes = true }

// direct runs a worker with direct lanes whatever BOTRELAY_TEST_LANES says.
func direct(c *worker.Config) { c.ConsumerLanes = false }

// watchConsumers samples the outbound stream's consumer count until the
// returned stop is called, which returns the largest count seen and how
// many samples were taken.
func (r *rig) watchConsumers() (stop func() (most, samples int)) {
	r.t.Helper()
	st, err := r.js.Stream(context.Background(), r.topo.OutStream())
	require.NoError(r.t, err)
	done := make(chan struct{})
	var most, samples atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			info, err := st.Info(ctx)
			cancel()
			if err == nil {
				samples.Add(1)
				if n := int64(info.State.Consumers); n > most.Load() {
					most.Store(n)
				}
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	return func() (int, int) {
		close(done)
		wg.Wait()
		return int(most.Load()), int(samples.Load())
	}
}

// Direct lanes deliver each robot's messages exactly once and in publish
// order, and the outbound stream never has a consumer.
func TestDirectLanesDeliverInOrderWithoutConsumers(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	robots := []string{"direct-a", "direct-b", "direct-c"}
	for _, name := range robots {
		r.addRobot(robotsim.PlatformPOPO, name, "sec", "sec", nil, fastLimit)
	}
	stopWatch := r.watchConsumers()
	r.startWorker(direct)
	want := map[string][]string{}
	for i := range 30 {
		for _, name := range robots {
			c := fmt.Sprintf("%s %02d", name, i)
			want[name] = append(want[name], c)
			r.publish(envelope.New(name, text(c)))
		}
	}
	for _, name := range robots {
		r.waitExactly(name, want[name]...)
	}
	most, samples := stopWatch()
	require.Positive(t, samples)
	require.Zero(t, most, "consumers on the outbound stream")
	require.Equal(t, 90, r.countEvents("delivered"))
	require.Zero(t, r.outPending())
}

// Two workers serving the same robot with direct lanes (no presence, so
// both serve it) read the same first message; the ledger's claim lets one
// post it at a time, and every message is posted once, in order.
func TestDirectLanesOfTwoWorkersPostOnceInOrder(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	const name = "shared-direct"
	r.addRobot(robotsim.PlatformPOPO, name, "sec", "sec", nil, fastLimit)
	// Slow answers, so that each worker reads a message the other is
	// posting.
	r.sim.InjectFault(name, robotsim.Fault{Delay: 30 * time.Millisecond, Count: 1000})
	both := func(c *worker.Config) { c.ConsumerLanes, c.Presence = false, nil }
	r.startWorker(both)
	r.startWorker(both)
	var want []string
	for i := range 40 {
		c := fmt.Sprintf("m%02d", i)
		want = append(want, c)
		r.publish(envelope.New(name, text(c)))
	}
	r.waitExactly(name, want...)
	require.Equal(t, 40, r.countEvents("delivered"))
	require.Positive(t, r.countEvents("held"), "the second worker never met a message the first was posting")
	require.Zero(t, r.outPending())
}

// A retried message stays first in the stream: the lane sleeps its
// backoff and the robot's later messages wait behind it.
func TestDirectLaneRetryKeepsOrder(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	const name = "flaky-direct"
	r.addRobot(robotsim.PlatformPOPO, name, "sec", "sec", nil, fastLimit)
	r.sim.InjectFault(name, robotsim.Fault{Status: 503, Count: 2})
	r.startWorker(direct)
	want := []string{"one", "two", "three", "four"}
	for _, c := range want {
		r.publish(envelope.New(name, text(c)))
	}
	r.waitExactly(name, want...)
	require.Equal(t, 2, r.countEvents("retry"))
	require.Equal(t, 4, r.countEvents("delivered"))
	got := r.sim.Received(name)
	require.Len(t, got, 4)
	for i, c := range want {
		require.Equal(t, c, got[i].Content)
	}
}

// A fan-out past the server's default consumer limit, one message to each
// of 1,500 robots, is delivered exactly once each with no consumer at all.
func TestDirectFanOutPastConsumerLimit(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	const n = 1500
	for i := range n {
		r.addRobot(robotsim.PlatformPOPO, fmt.Sprintf("dfan-%04d", i), "sec", "sec", nil, fastLimit)
	}
	stopWatch := r.watchConsumers()
	r.startWorker(func(c *worker.Config) { c.ConsumerLanes, c.LaneIdle = false, 2*time.Second })
	envs := make([]*envelope.Envelope, 0, n)
	for i := range n {
		env := envelope.New(fmt.Sprintf("dfan-%04d", i), text(fmt.Sprintf("hello %d", i)))
		envs = append(envs, env)
		r.publish(env)
	}
	r.waitDelivered(envs, 90*time.Second)
	most, _ := stopWatch()
	require.Zero(t, most, "consumers on the outbound stream")
	require.Equal(t, n, r.countEvents("delivered"))
	for i := range n {
		got := r.sim.Received(fmt.Sprintf("dfan-%04d", i))
		require.Len(t, got, 1)
		require.Equal(t, fmt.Sprintf("hello %d", i), got[0].Content)
	}
	require.Zero(t, r.outPending())
}

// A direct lane's retry backoff holds every other worker off too: a
// worker that starts serving the robot during the backoff (here one
// without presence, so it serves it at once) finds the message marked
// waiting and does not post it before it is due.
func TestDirectRetryBackoffHoldsOtherWorkers(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	const name = "backoff-direct"
	r.addRobot(robotsim.PlatformPOPO, name, "sec", "sec", nil, fastLimit)
	r.sim.InjectFault(name, robotsim.Fault{Status: 503})
	const backoff = 2 * time.Second
	cfg := func(c *worker.Config) {
		c.ConsumerLanes, c.Presence = false, nil
		c.Backoff = worker.Backoff{Initial: backoff, Max: backoff, Jitter: 0.01}
	}
	r.startWorker(cfg)
	r.publish(envelope.New(name, text("patient")))
	testenv.Eventually(t, 10*time.Second, func() bool { return len(r.sim.Requests(name)) == 1 }, "first attempt made")
	r.startWorker(cfg) // reads the message while the first worker's lane sleeps its backoff
	r.waitExactly(name, "patient")
	reqs := r.sim.Requests(name)
	require.Len(t, reqs, 2, "one failed attempt, one success")
	require.Equal(t, robotsim.RequestFaulted, reqs[0].Outcome)
	require.Equal(t, robotsim.RequestAccepted, reqs[1].Outcome)
	require.GreaterOrEqual(t, reqs[1].At.Sub(reqs[0].At), backoff-100*time.Millisecond, "retried before its backoff ended")
	require.Positive(t, r.countEvents("held"), "the second worker never read the waiting message")
	require.Equal(t, 1, r.countEvents("retry"))
}

// A message that expires while another worker's direct lane is posting
// it is neither dead-lettered under that lane nor overtaken by the
// robot's next message.
func TestDirectExpiryWaitsForTheLanePostingIt(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	const name = "expiry-direct"
	r.addRobot(robotsim.PlatformPOPO, name, "sec", "sec", nil, fastLimit)
	r.sim.InjectFault(name, robotsim.Fault{Delay: 1500 * time.Millisecond}) // the first request only
	cfg := func(c *worker.Config) { c.ConsumerLanes, c.Presence = false, nil }
	r.startWorker(cfg)
	r.publish(envelope.New(name, text("first"), envelope.WithTTL(500*time.Millisecond)))
	r.publish(envelope.New(name, text("second")))
	// The simulator records a request once answered: by 800ms the first
	// worker's request for "first" is in flight and "first" has expired.
	time.Sleep(800 * time.Millisecond)
	require.Empty(t, r.sim.Requests(name))
	r.startWorker(cfg)
	r.waitExactly(name, "first", "second")
	require.Empty(t, r.deadLetters())
	require.Positive(t, r.countEvents("held"), "the second worker never read the expired message")
}

// With no consumer there is no delivery count, so a repost after a worker
// died posting a message counts as an attempt: a message whose every
// poster dies ends in the dead-letter stream once the budget is spent.
func TestDirectRepostAfterDeadWorkerSpendsAnAttempt(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	const name = "crashy-direct"
	r.addRobot(robotsim.PlatformPOPO, name, "sec", "sec", nil, fastLimit)
	env := envelope.New(name, text("deadly"))
	r.publish(env)
	// A worker took it and died mid-request: its lease ran out with no
	// outcome recorded.
	rdb := redis.NewClient(&redis.Options{Addr: r.redisAddr()})
	t.Cleanup(func() { _ = rdb.Close() })
	led := ledger.NewRedis(rdb, r.prefix, time.Hour)
	c, _, err := led.Claim(context.Background(), stream.MsgID(name, env.ID), "dead-worker", time.Millisecond, false)
	require.NoError(t, err)
	require.Equal(t, ledger.Claimed, c)
	time.Sleep(20 * time.Millisecond)
	r.startWorker(func(c *worker.Config) { c.ConsumerLanes, c.MaxAttempts = false, 1 })
	dl := r.waitDeadExactly(1, 20*time.Second)[0].Record
	require.Equal(t, deadletter.ReasonExhausted, dl.Reason)
	require.Equal(t, env.ID, dl.Envelope.ID)
	require.Empty(t, r.sim.Requests(name))
	require.Zero(t, r.outPending())
}
