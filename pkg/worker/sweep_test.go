package worker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/worker"
)

// announceAs keeps announcing, as a live worker of another process would,
// that worker serves robots, every interval until the returned stop.
func announceAs(t *testing.T, r *rig, id string, robots []string, interval time.Duration) (stop func()) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: r.redisAddr()})
	t.Cleanup(func() { _ = rdb.Close() })
	p := ledger.NewRedis(rdb, r.prefix, time.Hour)
	a := ledger.Announcement{Worker: id, Robots: robots, TTL: 3 * interval}
	require.NoError(t, p.Announce(context.Background(), a))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
				_ = p.Announce(ctx, a)
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { cancel(); wg.Wait() }) }
}

// A robot configured on another live worker that has no consumer right
// now (its lane is lazy: no work seen yet, or its consumer expired) is
// never swept by a worker without it, however many sweeps pass. Once no
// live worker serves it any more (its worker is gone and its announcement
// expired), its queued messages are dead-lettered as unknown_robot, each
// once, in publish order.
func TestSweepSparesRobotConfiguredElsewhere(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "kept", "sec", "sec", nil, popoLimit)
	const interval = 200 * time.Millisecond // the rig's SweepInterval
	stopOther := announceAs(t, r, "other-worker/1", []string{"lazy", "also-elsewhere"}, interval)
	one, two := envelope.New("lazy", text("one")), envelope.New("lazy", text("two"))
	r.publish(one)
	r.publish(two)

	r.startWorker(nil) // knows only "kept", sweeps every 200ms
	r.publish(envelope.New("kept", text("here")))
	r.waitExactly("kept", "here")
	time.Sleep(15 * interval) // many sweeps
	require.Empty(t, r.deadLetters(), "served elsewhere: never swept")
	require.Equal(t, uint64(2), r.queuedFor("lazy"), "both still queued for their worker")
	_, err := r.js.Consumer(context.Background(), r.topo.OutStream(), r.topo.ConsumerName("lazy"))
	require.Error(t, err, "and it has no consumer")

	stopOther() // the other worker is gone; its announcement expires in 3 intervals
	es := r.waitDeadExactly(2, 15*time.Second)
	var got []string
	for _, e := range es {
		require.Equal(t, deadletter.ReasonUnknownRobot, e.Record.Reason)
		require.Equal(t, "lazy", e.Record.Robot)
		got = append(got, e.Record.Envelope.ID)
	}
	require.Equal(t, []string{one.ID, two.ID}, got, "each once, in publish order")
}

// A worker that cannot read the Presence cannot tell which robots some
// worker serves, so it sweeps nothing (and serves its own robots as
// usual); once it can, an unknown robot's messages are dead-lettered.
func TestSweepNeedsPresenceView(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "kept", "sec", "sec", nil, popoLimit)
	ghost := envelope.New("ghost", text("boo"))
	r.publish(ghost)
	down := redis.NewClient(&redis.Options{Addr: testenv.ClosedAddr(t), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = down.Close() })
	stop := r.startWorker(func(c *worker.Config) { c.Presence = ledger.NewRedis(down, r.prefix, time.Hour) })
	r.publish(envelope.New("kept", text("here")))
	r.waitExactly("kept", "here")
	time.Sleep(2 * time.Second) // 10 sweeps
	require.Empty(t, r.deadLetters())
	require.Equal(t, uint64(1), r.queuedFor("ghost"))
	stop()

	r.startWorker(nil) // the rig's worker, whose Presence works
	dl := r.waitDeadExactly(1, 15*time.Second)[0].Record
	require.Equal(t, deadletter.ReasonUnknownRobot, dl.Reason)
	require.Equal(t, ghost.ID, dl.Envelope.ID)
}
