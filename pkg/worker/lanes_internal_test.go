package worker

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/robotsim"
)

// ownedSet is an ownership whose set the test changes.
type ownedSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (o *ownedSet) Owns(robot string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.m[robot]
}

func (o *ownedSet) set(robot string, owned bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.m[robot] = owned
}

// A worker starts lanes only for the robots it owns; a robot it stops
// owning has its lane stopped, and one it comes to own is served after a
// rescan.
func TestLanesFollowOwnership(t *testing.T) {
	ctx := context.Background()
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(ctx, js))
	rdb, prefix := testenv.Redis(t)
	require.NoError(t, rdb.Set(ctx, prefix+":epoch", "0", 0).Err())
	lim, err := limiter.NewRedis(rdb, limiter.WithPrefix(prefix))
	require.NoError(t, err)
	sim := robotsim.NewServer(robotsim.Config{})
	t.Cleanup(sim.Close)
	var robots []Robot
	for _, name := range []string{"mine", "theirs"} {
		require.NoError(t, sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: name, Secret: "sec", Limit: 1000}))
		robots = append(robots, Robot{Robot: delivery.Robot{Name: name, Platform: robotsim.PlatformPOPO, Webhook: sim.WebhookURL(name), Secret: "sec"},
			Limit: limiter.Limit{Max: 1000, Window: time.Second}})
	}
	snd, err := delivery.New()
	require.NoError(t, err)
	var delivered atomic.Int64
	w, err := New(js, Config{Topology: topo, Robots: robots, Sender: snd, Limiter: lim, Ledger: ledger.NewRedis(rdb, prefix, time.Hour),
		AckWait: 2 * time.Second, FetchWait: 100 * time.Millisecond, LaneIdle: time.Minute, ScanInterval: time.Hour, SweepInterval: -1,
		Logger: slog.New(slog.DiscardHandler), Observe: func(ev Event) {
			if ev.Kind == "delivered" {
				delivered.Add(1)
			}
		}})
	require.NoError(t, err)
	own := &ownedSet{m: map[string]bool{"mine": true}}
	w.owner = own
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	send := func(robot, content string) {
		_, err := pub.Publish(ctx, envelope.New(robot, envelope.Message{Text: &envelope.Text{Content: content}}))
		require.NoError(t, err)
	}
	send("mine", "one")
	send("theirs", "not mine")
	testenv.Eventually(t, 10*time.Second, func() bool { return len(sim.Received("mine")) == 1 }, "mine: delivered")
	time.Sleep(300 * time.Millisecond)
	require.Empty(t, sim.Received("theirs"), "not owned: not served")
	require.Equal(t, 1, w.Lanes())

	// Ownership moves: "mine" to another worker, "theirs" to this one.
	own.set("mine", false)
	own.set("theirs", true)
	testenv.Eventually(t, 5*time.Second, func() bool { return w.Lanes() == 0 }, "mine: lane stopped")
	w.rescan()
	testenv.Eventually(t, 10*time.Second, func() bool { return len(sim.Received("theirs")) == 1 }, "theirs: served after the rescan")
	send("mine", "two")
	time.Sleep(300 * time.Millisecond)
	require.Len(t, sim.Received("mine"), 1, "no longer owned: not served")
	require.Equal(t, int64(2), delivered.Load())

	// Its owner serves it not (dead, or its presence not expired yet): two
	// scans see its backlog unchanged, and this worker pulls it too.
	testenv.Eventually(t, 10*time.Second, func() bool {
		w.rescan()
		return len(sim.Received("mine")) == 2
	}, "mine: rescued after two scans without progress")
	require.Equal(t, "two", sim.Received("mine")[1].Content)
	require.Equal(t, 2, w.Lanes(), "theirs, and the rescue lane of mine")
	require.Equal(t, int64(3), delivered.Load())
}

// onlyLimiter hides a limiter's other methods (Inspect): a limiter that
// cannot say why a robot waits.
type onlyLimiter struct{ limiter.Limiter }

// A robot of another worker whose backlog does not move while its rate
// window is full gets no rescue lane until a slot is free: its owner may
// be waiting for the window, as every owner of an alert storm's robots is
// in the minute after their quota is spent. Once the slot is free and it
// still does not move, it is rescued and posted. A limiter that cannot
// tell (no Inspect) leaves the rescue as it was: at once.
func TestNoRescueWhileTheLimitExplainsIt(t *testing.T) {
	const window = 2 * time.Second
	for _, tc := range []struct {
		name    string
		inspect bool
	}{
		{"limiter tells the wait", true},
		{"limiter cannot tell", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			_, js := testenv.Connect(t, testenv.NATSURL(t))
			topo := testenv.Topology(t, js)
			require.NoError(t, topo.Ensure(ctx, js))
			rdb, prefix := testenv.Redis(t)
			require.NoError(t, rdb.Set(ctx, prefix+":epoch", "0", 0).Err())
			red, err := limiter.NewRedis(rdb, limiter.WithPrefix(prefix))
			require.NoError(t, err)
			var lim limiter.Limiter = red
			if !tc.inspect {
				lim = onlyLimiter{red}
			}
			sim := robotsim.NewServer(robotsim.Config{})
			t.Cleanup(sim.Close)
			require.NoError(t, sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "theirs", Secret: "sec", Limit: 1000}))
			limit := limiter.Limit{Max: 1, Window: window}
			rb := Robot{Robot: delivery.Robot{Name: "theirs", Platform: robotsim.PlatformPOPO, Webhook: sim.WebhookURL("theirs"), Secret: "sec"}, Limit: limit}
			// The window is full: its owner posted a moment ago.
			d, err := red.Reserve(ctx, "theirs", limit)
			require.NoError(t, err)
			require.True(t, d.Allowed)
			full := time.Now()

			snd, err := delivery.New()
			require.NoError(t, err)
			w, err := New(js, Config{Topology: topo, Robots: []Robot{rb}, Sender: snd, Limiter: lim, Ledger: ledger.NewRedis(rdb, prefix, time.Hour),
				AckWait: 2 * time.Second, FetchWait: 100 * time.Millisecond, LaneIdle: time.Minute, ScanInterval: 100 * time.Millisecond, SweepInterval: -1,
				Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			w.owner = &ownedSet{m: map[string]bool{}} // another worker's, which serves it not
			pub, err := publisher.New(js, topo)
			require.NoError(t, err)
			_, err = pub.Publish(ctx, envelope.New("theirs", envelope.Message{Text: &envelope.Text{Content: "after the window"}}))
			require.NoError(t, err)
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- w.Run(runCtx) }()
			t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

			if !tc.inspect {
				testenv.Eventually(t, 5*time.Second, func() bool { return w.Lanes() == 1 }, "rescued while the window is full")
				require.Less(t, time.Since(full), window, "rescued before the slot is free")
			} else {
				// Ten scans and more while the window is full: no lane.
				for time.Since(full) < window-200*time.Millisecond {
					require.Equal(t, 0, w.Lanes(), "a rescue lane while the limit explains the wait (%s after the grant)", time.Since(full))
					time.Sleep(20 * time.Millisecond)
				}
			}
			testenv.Eventually(t, 10*time.Second, func() bool { return len(sim.Received("theirs")) == 1 }, "rescued and posted once the slot is free")
			require.GreaterOrEqual(t, sim.Received("theirs")[0].At.Sub(full), window, "posted within the window")
			require.Equal(t, 1, w.Lanes(), "the rescue lane")
		})
	}
}
