package worker_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
	"github.com/botrelay/botrelay/pkg/worker"
)

// publishN publishes n numbered text messages ("<prefix> <i>") to robot.
func (r *rig) publishN(robot, prefix string, n int) []*envelope.Envelope {
	r.t.Helper()
	envs := make([]*envelope.Envelope, n)
	for i := range n {
		envs[i] = envelope.New(robot, text(fmt.Sprintf("%s %d", prefix, i)))
	}
	_, err := r.pub.PublishAll(context.Background(), envs)
	require.NoError(r.t, err)
	return envs
}

// usage is how close a robot's deliveries came to its limit: the least time
// n messages need at max per window, over the time they took.
func usage(got []robotsim.Received, max int, window time.Duration) float64 {
	n := len(got)
	need := time.Duration((n+max-1)/max-1) * window
	took := got[n-1].At.Sub(got[0].At)
	return need.Seconds() / took.Seconds()
}

// Eight workers, each with its own NATS connection and Redis client, share
// one robot: the simulator sees no breach and the quota is used at >= 90%.
func TestEightWorkersShareOneRobot(t *testing.T) {
	const window, max, n = 2 * time.Second, 10, 50
	r := newRig(t, "", robotsim.Config{Window: window, Ban: time.Minute})
	r.addRobot(robotsim.PlatformDingTalk, "shared", "sec", "sec", nil,
		limiter.Limit{Max: max, Window: window, Margin: 100 * time.Millisecond})
	envs := r.publishN("shared", "msg", n)
	for range 8 {
		r.startWorker(nil)
	}
	p := r.waitExactly("shared", contents(envs)...)
	require.Empty(t, p.Refused, "no request refused")
	got := r.sim.Received("shared")
	st := r.sim.Stats("shared")
	require.Zero(t, st.Breaches, "%+v", st)
	require.Zero(t, st.DuringBan)
	require.Equal(t, n, st.Accepted)
	u := usage(got, max, window)
	t.Logf("quota usage %.1f%% over %s", 100*u, got[n-1].At.Sub(got[0].At))
	require.GreaterOrEqual(t, u, 0.9)
}

// Robots of both platforms at once, each at its own limit, none breached.
func TestManyRobotsEachWithinItsLimit(t *testing.T) {
	const window = time.Second
	r := newRig(t, "", robotsim.Config{Window: window, Ban: time.Minute})
	want := map[string]int{}
	published := map[string][]*envelope.Envelope{}
	for i := range 3 {
		d, p := fmt.Sprintf("ding%d", i), fmt.Sprintf("popo%d", i)
		r.addRobot(robotsim.PlatformDingTalk, d, "sec", "sec", nil, limiter.Limit{Max: 5, Window: window, Margin: 50 * time.Millisecond})
		r.addRobot(robotsim.PlatformPOPO, p, "sec", "sec", nil, limiter.Limit{Max: 15, Window: window, Margin: 50 * time.Millisecond})
		want[d], want[p] = 15, 45
	}
	for name, n := range want {
		published[name] = r.publishN(name, name, n)
	}
	for range 4 {
		r.startWorker(nil)
	}
	for name, n := range want {
		p := r.waitExactly(name, contents(published[name])...)
		require.Empty(t, p.Refused, "robot %s", name)
		st := r.sim.Stats(name)
		require.Zero(t, st.Breaches, "robot %s: %+v", name, st)
		require.Equal(t, n, st.Accepted, "robot %s", name)
	}
}

// The platform throttles a robot (its real limit is lower than configured):
// the worker cools off, sends nothing during the ban, and delivers every
// message afterwards without spending attempts or dead-lettering any —
// whether the lane holds the message through the cool-off or hands it back
// to JetStream with a delayed redelivery (HoldMax below the cool-off).
func TestThrottledRobotCoolsOff(t *testing.T) {
	for _, tt := range []struct {
		name string
		hold time.Duration
	}{
		{name: "held", hold: 0},
		{name: "handed back", hold: 100 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const ban = 1500 * time.Millisecond
			r := newRig(t, "", robotsim.Config{Window: time.Second, Ban: ban})
			r.addRobot(robotsim.PlatformDingTalk, "strict", "sec", "sec", nil, limiter.Limit{Max: 10, Window: time.Second})
			// The simulator allows 3 per window although the worker believes 10.
			require.NoError(t, r.sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: "strict", Secret: "sec", Limit: 3}))
			r.robots[0].CoolOff = ban + 100*time.Millisecond
			envs := r.publishN("strict", "msg", 12)
			mod := func(c *worker.Config) {
				c.HoldMax = tt.hold
				c.MaxRedeliveries = 1 // waits handed back must not count as crashes
			}
			r.startWorker(mod)
			r.startWorker(mod)

			// Each message once, in order, across the cool-offs.
			p := r.waitPosts("strict", expect{key: testenv.ByMsgUUID}, ids(envs)...)
			st := r.sim.Stats("strict")
			require.GreaterOrEqual(t, st.Breaches, 1, "the platform throttled the robot")
			require.Zero(t, st.DuringBan, "no request reached the robot during its cool-off")
			require.Equal(t, 12, st.Accepted)
			require.Empty(t, r.deadLetters())
			// Every breach is one refused request, answered by one cool-off
			// (one throttled event), and the refused message is the one
			// posted next.
			require.Len(t, p.Refused, st.Breaches, "%+v", st)
			require.Equal(t, st.Breaches, r.countEvents("throttled"))
			for _, rq := range p.Refused {
				require.Equal(t, robotsim.DingTalkErrThrottled, rq.ErrCode)
			}
			require.Zero(t, r.countEvents("retry"), "a throttle is not a failed attempt")
			for _, ev := range r.eventsOf("throttled") {
				if tt.hold > 0 {
					require.Equal(t, ban+100*time.Millisecond, ev.Delay, "the cool-off was waited out in JetStream")
				} else {
					require.Zero(t, ev.Delay, "the lane held the message through the cool-off")
				}
			}
			for _, ev := range r.waitDelivered(envs, 10*time.Second) {
				require.Equal(t, 1, ev.Attempts, "waiting never spends an attempt")
			}
		})
	}
}

// A robot over its window hands its next message back to JetStream when the
// slot is further away than HoldMax; it comes back at the slot, in order,
// never counted as an attempt or as a redelivery without an outcome.
func TestLongWaitsAreHandedBack(t *testing.T) {
	const window = time.Second
	r := newRig(t, "", robotsim.Config{Window: window, Ban: time.Minute})
	r.addRobot(robotsim.PlatformPOPO, "slow", "sec", "sec", nil, limiter.Limit{Max: 3, Window: window, Margin: 50 * time.Millisecond})
	envs := r.publishN("slow", "msg", 9)
	r.startWorker(func(c *worker.Config) {
		c.HoldMax = 50 * time.Millisecond
		c.MaxRedeliveries = 1
	})
	// In order, each once (POPO keeps a repeat as a second message).
	p := r.waitExactly("slow", contents(envs)...)
	require.Empty(t, p.Refused)
	require.Zero(t, r.sim.Stats("slow").Breaches)
	// Messages 3 and 6 at least find the window full (3 per second).
	require.GreaterOrEqual(t, r.countEvents("deferred"), 2)
	require.Empty(t, r.deadLetters())
	for _, ev := range r.waitDelivered(envs, 10*time.Second) {
		require.Equal(t, 1, ev.Attempts)
	}
}

// Redis (the workers' limiter and ledger) is killed and restarted empty
// mid-run: the workers hold messages while it is down (fail closed), the
// restart guard keeps them from trusting the empty state, and nothing is
// lost or sent over the limit.
func TestRedisRestartMidRun(t *testing.T) {
	const window, max, n = 2 * time.Second, 10, 40
	red := testenv.StartRedis(t)
	r := newRig(t, "", robotsim.Config{Window: window, Ban: time.Minute})
	r.redis = red.Addr
	arm := func() {
		c := redis.NewClient(&redis.Options{Addr: red.Addr})
		defer c.Close()
		require.NoError(t, c.Set(context.Background(), r.prefix+":epoch", "0", 0).Err())
	}
	arm()
	r.addRobot(robotsim.PlatformPOPO, "steady", "sec", "sec", nil, limiter.Limit{Max: max, Window: window, Margin: 50 * time.Millisecond})
	envs := r.publishN("steady", "msg", n)
	// Slow answers spread each burst, so Redis dies in the middle of one.
	r.sim.InjectFault("steady", robotsim.Fault{Delay: 40 * time.Millisecond, Count: n})
	fast := func(c *worker.Config) { c.Backoff.Initial = 10 * time.Millisecond }
	r.startWorker(fast)
	r.startWorker(fast)

	// Kill Redis in the middle of a burst, while the platform still counts
	// it, and bring it back empty at once: trusting the empty state would
	// grant a whole new burst inside the same window.
	testenv.Eventually(t, 30*time.Second, func() bool { return len(r.sim.Received("steady")) >= max+3 }, "mid-burst")
	red.Stop()
	down := len(r.sim.Received("steady"))
	time.Sleep(150 * time.Millisecond)
	require.LessOrEqual(t, len(r.sim.Received("steady")), down+1, "nothing is sent while Redis is down (one in flight at most)")
	red.Start() // empty: every window forgotten

	// Nothing lost, nothing posted twice (POPO would keep a repeat).
	p := r.waitExactly("steady", contents(envs)...)
	require.Empty(t, p.Refused)
	st := r.sim.Stats("steady")
	require.Zero(t, st.Breaches, "%+v", st)
	require.Equal(t, n, st.Accepted)
	require.Empty(t, r.deadLetters())
}

// Messages published in order to one robot arrive in that order with four
// workers, also when the first of them needs retries.
func TestOrderPerRobot(t *testing.T) {
	for _, fault := range []bool{false, true} {
		t.Run("retry="+strconv.FormatBool(fault), func(t *testing.T) {
			r := newRig(t, "", robotsim.Config{Window: time.Second})
			r.addRobot(robotsim.PlatformPOPO, "ordered", "sec", "sec", nil, limiter.Limit{Max: 60, Window: time.Second, Margin: 50 * time.Millisecond})
			if fault {
				r.sim.InjectFault("ordered", robotsim.Fault{Status: 502, Count: 2})
			}
			envs := r.publishN("ordered", "msg", 100)
			for range 4 {
				r.startWorker(nil)
			}
			// Exactly msg 0..99 in that order: POPO keeps every request it
			// accepts, so a repeat would show as a message out of place.
			p := r.waitExactly("ordered", contents(envs)...)
			require.Empty(t, p.Refused)
			if fault {
				require.Len(t, p.Faulted, 2, "the two 502s")
			} else {
				require.Empty(t, p.Faulted)
			}
			got := r.sim.Received("ordered")
			seq := make([]string, len(got))
			for i, rc := range got {
				seq[i] = rc.Content
			}
			require.Equal(t, contents(envs), seq, "arrival order")
		})
	}
}

// The NATS server restarts mid-run (same port, same file store): the
// workers reconnect by themselves, nothing is lost, nothing posted twice,
// no limit breached.
func TestNATSRestartMidRun(t *testing.T) {
	const window, max, n = time.Second, 10, 40
	ns := testenv.StartRestartableNATS(t)
	r := newRig(t, ns.URL(), robotsim.Config{Window: window, Ban: time.Minute})
	r.addRobot(robotsim.PlatformDingTalk, "steady", "sec", "sec", nil, limiter.Limit{Max: max, Window: window, Margin: 50 * time.Millisecond})
	envs := r.publishN("steady", "msg", n)
	r.sim.InjectFault("steady", robotsim.Fault{Delay: 20 * time.Millisecond, Count: n})
	r.startWorker(nil)
	r.startWorker(nil)

	testenv.Eventually(t, 30*time.Second, func() bool { return len(r.sim.Received("steady")) >= 5 }, "first deliveries")
	ns.Stop()
	time.Sleep(300 * time.Millisecond)
	ns.Start()

	// Order kept across the restart, nothing posted twice (a repeat
	// counts though DingTalk drops it by msgUuid).
	p := r.waitPosts("steady", expect{key: testenv.ByMsgUUID, timeout: 90 * time.Second}, ids(envs)...)
	require.Empty(t, p.Refused)
	st := r.sim.Stats("steady")
	require.Zero(t, st.Breaches, "%+v", st)
	require.Zero(t, st.Duplicates, "nothing posted twice: %+v", st)
	require.Equal(t, n, st.Accepted)
	require.Empty(t, r.deadLetters())
}

// With Redis down (the ledger unreadable), a message that was legitimately
// handed back more than MaxRedeliveries times to wait for slots is held,
// not dead-lettered as redelivered: without the ledger, waits cannot be
// told from crashes, so the worker fails closed.
func TestRedisDownDoesNotDeadLetterWaitingMessage(t *testing.T) {
	const handedBack = 5
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "patient", "sec", "sec", nil, popoLimit)
	env := envelope.New("patient", text("waited a lot"))
	r.publish(env)

	// Earlier workers deferred it handedBack times for its slot, each
	// recorded in the ledger, exactly as deferWait does.
	ctx := context.Background()
	rdb, _ := testenv.Redis(t)
	led := ledger.NewRedis(rdb, r.prefix, time.Hour)
	c, err := r.topo.EnsureRobotConsumer(ctx, r.js, "patient", 2*time.Second)
	require.NoError(t, err)
	for range handedBack {
		msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		require.NoError(t, err)
		_, err = led.RecordWait(ctx, stream.MsgID("patient", env.ID), "earlier-worker", time.Second)
		require.NoError(t, err)
		require.NoError(t, msg.Nak())
	}

	// Now Redis is unreachable for the worker.
	r.redis = "127.0.0.1:1"
	var limiterErrs atomic.Int64
	r.startWorker(func(c *worker.Config) {
		c.MaxRedeliveries = handedBack - 1 // scaled down from 100
		c.Limiter = countingLimiter{Limiter: c.Limiter, errs: &limiterErrs}
	})
	testenv.Eventually(t, 15*time.Second, func() bool {
		return r.countEvents("dead_letter") > 0 || limiterErrs.Load() >= 2
	}, "the worker reached the message")
	require.Zero(t, r.countEvents("dead_letter"), "fail closed: a message must not be dead-lettered because Redis is down")
	require.Empty(t, r.sim.Requests("patient"), "fail closed: nothing is posted without the limiter")
}

// When every delivery slot is busy (a slow platform), a lane waiting for
// one must not hold a reserved rate slot meanwhile: it would post late, and
// its next message, whose slot was computed from the reservation time,
// would follow closer than the window allows.
func TestBusyDeliverySlotsDoNotBreachLimit(t *testing.T) {
	const window = time.Second
	r := newRig(t, "", robotsim.Config{Window: window, Ban: time.Minute})
	r.addRobot(robotsim.PlatformPOPO, "slowpoke", "sec", "sec", nil, popoLimit)
	r.addRobot(robotsim.PlatformPOPO, "strict", "sec", "sec", nil, limiter.Limit{Max: 1, Window: window, Margin: 50 * time.Millisecond})
	r.sim.InjectFault("slowpoke", robotsim.Fault{Delay: 1500 * time.Millisecond})
	r.startWorker(func(c *worker.Config) { c.Concurrency = 1 })
	r.publish(envelope.New("slowpoke", text("slow")))
	time.Sleep(400 * time.Millisecond) // let slowpoke's request take the one delivery slot
	r.publishN("strict", "s", 2)
	p := r.waitExactly("strict", "s 0", "s 1")
	require.Empty(t, p.Refused, "strict: no request refused")
	require.Zero(t, r.sim.Stats("strict").Breaches, "strict: %+v", r.sim.Stats("strict"))
}
