package worker_test

import (
	"context"
	"fmt"
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
	"github.com/botrelay/botrelay/pkg/worker"
)

// A robot added by a reload is announced at once: another worker's sweep
// (every 200ms here) must not take it for a robot nobody serves while the
// reloading worker waits for its next presence interval (an hour here),
// and so delete its consumer and dead-letter its messages as unknown_robot.
func TestReloadAddedRobotIsNotSwept(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	base := r.addRobot(robotsim.PlatformPOPO, "base", "sec", "sec", nil, popoLimit)
	other := r.addRobot(robotsim.PlatformPOPO, "other", "sec", "sec", nil, popoLimit)
	// One message per 20s: the later ones wait in the stream.
	late := r.addRobot(robotsim.PlatformPOPO, "late", "sec", "sec", nil, limiter.Limit{Max: 1, Window: 20 * time.Second})

	var a *worker.Worker
	r.startWorker(func(c *worker.Config) {
		c.Robots = []worker.Robot{base}
		c.SweepInterval = time.Hour // announces once an hour
	})
	a = r.workers[0]
	r.startWorker(func(c *worker.Config) { c.Robots = []worker.Robot{other} }) // sweeps every 200ms
	r.publish(envelope.New("base", text("warm-up")))
	r.waitExactly("base", "warm-up")

	require.NoError(t, a.Reload([]worker.Robot{base, late}))
	for i := range 3 {
		r.publish(envelope.New("late", text(fmt.Sprint("m", i))))
	}
	r.waitPosts("late", expect{queued: true, timeout: 15 * time.Second}, "m0")
	time.Sleep(2 * time.Second) // ten sweeps of the other worker
	require.Empty(t, r.deadLetters(), "a configured robot's messages are not unknown_robot")
	require.Equal(t, uint64(2), r.queuedFor("late"), "both later messages still queued for their robot")
}

// A long sweep (a removed robot's big backlog being dead-lettered) does
// not hold up the worker's announcements: were its announcement to expire
// (three sweep intervals), the other workers' sweeps would take the robots
// only it serves for removed ones, delete their consumers and dead-letter
// their messages.
func TestLongSweepKeepsAnnouncing(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "kept", "sec", "sec", nil, popoLimit)
	const n = 3000
	for i := range n {
		r.publish(envelope.New("gone", text(fmt.Sprint(i))))
	}
	// The announcement lasts three intervals: 300ms made the test fail on a
	// loaded machine (the full suite in parallel) without any long sweep;
	// the sweep of 3,000 messages still takes several intervals.
	const interval = 300 * time.Millisecond
	r.startWorker(func(c *worker.Config) { c.SweepInterval = interval })
	id := ""
	rdb := redis.NewClient(&redis.Options{Addr: r.redisAddr()})
	t.Cleanup(func() { _ = rdb.Close() })
	p := ledger.NewRedis(rdb, r.prefix, time.Hour)
	deadline := time.Now().Add(time.Minute)
	for r.queuedFor("gone") > 0 {
		require.True(t, time.Now().Before(deadline), "swept within a minute")
		m, err := p.Members(context.Background())
		require.NoError(t, err)
		switch {
		case id == "" && len(m.Workers) == 1:
			id = m.Workers[0].Worker
		case id != "":
			require.Len(t, m.Workers, 1, "the sweeping worker's announcement expired (%d of %d still queued)", r.queuedFor("gone"), n)
		}
		time.Sleep(interval / 2)
	}
	require.NotEmpty(t, id)
	require.Len(t, r.waitDeadExactly(n, 10*time.Second), n)
}

// A robot whose owner is alive in the presence registry but serves
// nothing (cut off from NATS, or stuck) is rescued by another worker even
// while its messages keep coming: its backlog grows from scan to scan,
// which is no progress either.
func TestRescueWhileBacklogGrows(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	var names []string
	for i := range 16 {
		name := fmt.Sprintf("busy%02d", i)
		r.addRobot(robotsim.PlatformPOPO, name, "sec", "sec", nil, popoLimit)
		names = append(names, name)
	}
	// A live worker that serves the same robots and delivers nothing: it
	// owns about half of them.
	stopOther := announceAs(t, r, "stuck-worker/1", names, 200*time.Millisecond)
	defer stopOther()
	r.startWorker(func(c *worker.Config) { c.ScanInterval = 300 * time.Millisecond })
	posted := func(robot string) int { return len(r.sim.Requests(robot)) }
	deadline := time.Now().Add(8 * time.Second)
	for i := 0; ; i++ {
		for _, name := range names {
			r.publish(envelope.New(name, text(fmt.Sprint(i))))
		}
		var starved []string
		for _, name := range names {
			if posted(name) == 0 {
				starved = append(starved, name)
			}
		}
		if len(starved) == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "robots never served while their messages keep coming: %v", starved)
		time.Sleep(100 * time.Millisecond)
	}
}

// A robot whose owner is announced but serves nothing, and whose message
// was handed back for longer than a rescue lane's LaneIdle, is rescued
// again once the message is due: one rescue per unchanged count left it
// waiting for as long as that owner lived.
func TestRescueAgainAfterLongHandBack(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "kept", "sec", "sec", nil, popoLimit)
	var names []string
	for i := range 8 {
		name := fmt.Sprintf("slow%02d", i)
		r.addRobot(robotsim.PlatformPOPO, name, "sec", "sec", nil, popoLimit)
		names = append(names, name)
	}
	ctx := context.Background()
	// The stuck owner took each robot's message and handed it back for 3s
	// (a cool-off), then stopped pulling.
	for _, name := range names {
		r.publish(envelope.New(name, text("late")))
		c, err := r.topo.EnsureLaneConsumer(ctx, r.js, name, 2*time.Second, time.Minute)
		require.NoError(t, err)
		msg, err := c.Next(jetstream.FetchMaxWait(2 * time.Second))
		require.NoError(t, err)
		require.NoError(t, msg.NakWithDelay(3*time.Second))
	}
	stopOther := announceAs(t, r, "stuck-worker/1", names, 200*time.Millisecond)
	defer stopOther()
	r.startWorker(func(c *worker.Config) {
		c.ScanInterval = 200 * time.Millisecond
		c.LaneIdle = 300 * time.Millisecond // the rescue lanes stop before the messages are due
	})
	deadline := time.Now().Add(8 * time.Second)
	for {
		var waiting []string
		for _, name := range names {
			if len(r.sim.Requests(name)) == 0 {
				waiting = append(waiting, name)
			}
		}
		if len(waiting) == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "never posted once due: %v", waiting)
		time.Sleep(50 * time.Millisecond)
	}
}

// Two workers started one after the other: the first saw itself alone
// and owns every robot, and it looks at the live workers again within
// seconds of its start, not a presence interval (30s here) later: each
// robot then has one lane, not one on each worker.
func TestWorkersStartedTogetherSplitTheRobotsSoon(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	const n = 16
	var names []string
	for i := range n {
		name := fmt.Sprintf("storm%02d", i)
		// One message a minute: each robot's second message waits.
		r.addRobot(robotsim.PlatformPOPO, name, "sec", "sec", nil, limiter.Limit{Max: 1, Window: time.Minute})
		names = append(names, name)
	}
	slow := func(c *worker.Config) { c.SweepInterval = 30 * time.Second }
	r.startWorker(slow)
	a := r.workers[0]
	for _, name := range names {
		r.publish(envelope.New(name, text("first")))
		r.publish(envelope.New(name, text("second")))
	}
	for _, name := range names {
		r.waitPosts(name, expect{queued: true, timeout: 10 * time.Second}, "first")
	}
	require.Equal(t, n, a.Lanes(), "alone: a lane for every robot, each waiting for its window")
	r.startWorker(slow)
	b := r.workers[1]
	// Well before the first's next presence interval (30s).
	testenv.Eventually(t, 10*time.Second, func() bool { return a.Lanes()+b.Lanes() == n && b.Lanes() > 0 },
		"one lane per robot over both workers")
	for _, name := range names {
		require.Len(t, r.sim.Requests(name), 1, "%s: its second message waits for the window", name)
	}
}

// An alert storm into one robot outgrows its limit: its backlog grows at
// every scan while its owner posts as fast as the limit allows, in bursts
// as the window frees. The other worker starts no rescue lane beside the
// live owner (before the limiter's grants counted as progress it started
// one about once per window plus two scans, whose reads of messages the
// owner was posting showed as "held" and "duplicate"). Every message is
// posted once, in order.
func TestStormIntoOneRobotGetsNoRescueLane(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	lim := limiter.Limit{Max: 5, Window: time.Second}
	r.addRobot(robotsim.PlatformPOPO, "storm", "sec", "sec", nil, limiter.Limit{Max: 100000, Window: time.Minute})
	r.robots[0].Limit = lim // the simulator's limit far above the worker's, which is under test
	scans := func(c *worker.Config) {
		c.ScanInterval = time.Second // the owner's slack to post after its window frees (a loaded CI machine)
		c.LaneIdle = time.Minute
		// Presence every 30s, as by default: grants hold a rescue off for
		// three presence intervals at most (the rig's 200ms would be 0.6s).
		c.SweepInterval = 30 * time.Second
	}
	r.startWorker(scans)
	r.startWorker(scans)
	// Both announced, and each has looked at the other (0.5s, 1.5s after
	// its start).
	time.Sleep(2 * time.Second)

	const n = 60 // 10/s for 6s, twice the limit
	var envs []*envelope.Envelope
	sum, most := 0, 0
	for i := range n {
		env := envelope.New("storm", text(fmt.Sprintf("alert %02d", i)))
		envs = append(envs, env)
		r.publish(env)
		for range 5 { // sample the lanes every 20ms meanwhile
			sum = r.workers[0].Lanes() + r.workers[1].Lanes()
			most = max(most, sum)
			time.Sleep(20 * time.Millisecond)
		}
	}
	for r.queuedFor("storm") > 0 {
		sum = r.workers[0].Lanes() + r.workers[1].Lanes()
		most = max(most, sum)
		time.Sleep(20 * time.Millisecond)
	}
	r.waitExactly("storm", contents(envs)...)
	require.Equal(t, 1, most, "the owner's lane and no other")
	require.Equal(t, 0, r.countEvents("held"), "no lane read a message the owner held")
	require.Equal(t, 0, r.countEvents("duplicate"), "no lane read a message the owner had posted")
}
