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
	// The simulator has the post before the worker has read its answer
	// and recorded the delivery (CI saw 2 here once).
	testenv.Eventually(t, 5*time.Second, func() bool { return delivered.Load() >= 3 }, "the delivery recorded")
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, int64(3), delivered.Load())
}

// onlyLimiter hides a limiter's other methods (Inspect): a limiter that
// cannot say why a robot waits.
type onlyLimiter struct{ limiter.Limiter }

// theirsSetup configures [newTheirs].
type theirsSetup struct {
	limit limiter.Limit
	// extra robots configured beside "theirs" (a twin of its key, a pool).
	extra []Robot
	// scan and sweep are the worker's ScanInterval and SweepInterval (the
	// presence interval when positive; -1 when zero).
	scan, sweep time.Duration
	// noEpoch leaves the restart guard's epoch missing: its quiet time
	// pending, started by the next Reserve.
	noEpoch bool
	// onlyLimiter hides the limiter's Inspect from the worker.
	onlyLimiter bool
	content     string // of the one message queued
}

// theirs is a worker, not running, configured with robot "theirs" that
// another worker owns (an ownership with nothing in it), one message
// queued for it; lim is the Redis limiter under it, sim serves "theirs".
type theirs struct {
	w   *Worker
	lim *limiter.Redis
	sim *robotsim.Server
}

func newTheirs(t *testing.T, o theirsSetup) theirs {
	t.Helper()
	ctx := context.Background()
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(ctx, js))
	rdb, prefix := testenv.Redis(t)
	if !o.noEpoch {
		require.NoError(t, rdb.Set(ctx, prefix+":epoch", "0", 0).Err())
	}
	red, err := limiter.NewRedis(rdb, limiter.WithPrefix(prefix))
	require.NoError(t, err)
	var lim limiter.Limiter = red
	if o.onlyLimiter {
		lim = onlyLimiter{red}
	}
	sim := robotsim.NewServer(robotsim.Config{})
	t.Cleanup(sim.Close)
	require.NoError(t, sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "theirs", Secret: "sec", Limit: 100000}))
	rb := Robot{Robot: delivery.Robot{Name: "theirs", Platform: robotsim.PlatformPOPO, Webhook: sim.WebhookURL("theirs"), Secret: "sec"}, Limit: o.limit}
	snd, err := delivery.New()
	require.NoError(t, err)
	sweep := o.sweep
	if sweep == 0 {
		sweep = -1
	}
	w, err := New(js, Config{Topology: topo, Robots: append([]Robot{rb}, o.extra...), Sender: snd, Limiter: lim,
		Ledger: ledger.NewRedis(rdb, prefix, time.Hour), AckWait: 2 * time.Second, FetchWait: 100 * time.Millisecond,
		LaneIdle: time.Minute, ScanInterval: o.scan, SweepInterval: sweep, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	w.owner = &ownedSet{m: map[string]bool{}} // another worker's, which serves it not
	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	_, err = pub.Publish(ctx, envelope.New("theirs", envelope.Message{Text: &envelope.Text{Content: o.content}}))
	require.NoError(t, err)
	return theirs{w: w, lim: red, sim: sim}
}

// run runs th.w until the test ends.
func (th theirs) run(t *testing.T) {
	t.Helper()
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- th.w.Run(runCtx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
}

// A robot of another worker whose backlog does not move while its rate
// window is full gets no rescue lane until a slot is free: its owner may
// be waiting for the window, as every owner of an alert storm's robots is
// in the minute after their quota is spent. Once the slot is free and it
// still does not move, it is rescued and posted. The wait is taken once
// per standstill: a window someone else fills again (a pool sharing a
// member's window) does not hold the rescue off twice. A restart-guard
// quiet time that started holds it off too. A limiter that cannot tell (no
// Inspect), and a quiet time that has not started (no robot reserved since
// Redis lost its state), leave the rescue as it was: at the second scan.
func TestNoRescueWhileTheLimitExplainsIt(t *testing.T) {
	const window = 3 * time.Second
	limit := limiter.Limit{Max: 1, Window: window}
	for _, tc := range []struct {
		name    string
		inspect bool // the worker's limiter has Inspect
		guard   bool // the restart guard on, its epoch missing
		fill    bool // the window full when the worker starts
		refill  bool // someone reserves the next slot the moment it frees
		shared  bool // another configured robot reserves under its key
		quiet   bool // another robot's Reserve started the quiet time
		// deferred: no rescue lane until the window's slot is free.
		deferred bool
	}{
		{name: "limiter tells the wait", inspect: true, fill: true, deferred: true},
		{name: "window filled again by a robot sharing its key", inspect: true, fill: true, refill: true, shared: true, deferred: true},
		{name: "limiter cannot tell", fill: true},
		{name: "quiet time not started", inspect: true, guard: true},
		{name: "quiet time started by another robot", inspect: true, guard: true, quiet: true, deferred: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var extra []Robot
			if tc.shared {
				extra = []Robot{{Robot: delivery.Robot{Name: "twin", Platform: robotsim.PlatformPOPO, Webhook: "http://127.0.0.1:1/", Secret: "sec"},
					Limit: limit, LimitKey: "theirs"}}
			}
			th := newTheirs(t, theirsSetup{limit: limit, extra: extra, scan: 100 * time.Millisecond, noEpoch: tc.guard,
				onlyLimiter: !tc.inspect, content: "after the window"})
			w, red, sim := th.w, th.lim, th.sim
			full := time.Now()
			if tc.fill {
				// The window is full: its owner posted a moment ago.
				d, err := red.Reserve(ctx, "theirs", limit)
				require.NoError(t, err)
				require.True(t, d.Allowed)
				full = time.Now()
			}
			if tc.quiet {
				// The first Reserve after Redis lost its state: every robot
				// is quiet for one Window+Margin from now.
				d, err := red.Reserve(ctx, "other", limit)
				require.NoError(t, err)
				require.False(t, d.Allowed)
				full = time.Now()
			}
			th.run(t)

			if !tc.deferred {
				testenv.Eventually(t, 5*time.Second, func() bool { return w.Lanes() == 1 }, "rescued at the second scan")
				require.Less(t, time.Since(full), window, "rescued before the slot is free")
				return
			}
			// The scans (every 100ms) while the window is full: no lane.
			passes := 0
			for time.Since(full) < window-300*time.Millisecond {
				require.Equal(t, 0, w.Lanes(), "a rescue lane while the limit explains the wait (%s after the grant)", time.Since(full))
				passes++
				time.Sleep(20 * time.Millisecond)
			}
			require.Greater(t, passes, 20, "the window was watched")
			if tc.refill {
				// The twin takes the slot the moment it frees: the window
				// stays full, and the rescue comes anyway (the grant is
				// no sign of the robot's own lane: TestNoRescueWhileItsKeyIsGranted).
				testenv.Eventually(t, 2*window, func() bool {
					d, err := red.Reserve(ctx, "theirs", limit)
					require.NoError(t, err)
					return d.Allowed
				}, "the next slot taken")
				refilled := time.Now()
				testenv.Eventually(t, window, func() bool { return w.Lanes() == 1 }, "rescued with its window full again")
				require.Less(t, time.Since(refilled), window, "before the refilled window frees")
				require.Empty(t, sim.Received("theirs"), "the window is full")
				return
			}
			testenv.Eventually(t, 10*time.Second, func() bool { return len(sim.Received("theirs")) == 1 }, "rescued and posted once the slot is free")
			require.GreaterOrEqual(t, sim.Received("theirs")[0].At.Sub(full), window, "not posted within the window")
			require.Equal(t, 1, w.Lanes(), "the rescue lane")
		})
	}
}

// A robot of another worker whose backlog does not go down (an alert
// storm outgrowing its limit) is not rescued while its limiter keeps
// granting under its key: its owner is posting. A key another configured
// robot shares (a pool member's, two robots of one identity) says nothing
// of the robot's own lane, and the robot is rescued at the second scan as
// before. Once the grants stop, the rescue comes; and while they go on,
// once the count has not gone down for three presence intervals (another
// worker's robot this one does not know may share the key).
func TestNoRescueWhileItsKeyIsGranted(t *testing.T) {
	const scanEvery = 500 * time.Millisecond                 // the granting goroutine may stall on a loaded machine
	limit := limiter.Limit{Max: 100000, Window: time.Minute} // never full
	for _, tc := range []struct {
		name   string
		shared bool
		// presence, when set, is the presence interval (SweepInterval):
		// the grants go on past three of them.
		presence time.Duration
	}{
		{name: "a key of its own"},
		{name: "a key a pool member shares", shared: true},
		{name: "granted for three presence intervals", presence: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var extra []Robot
			if tc.shared {
				extra = []Robot{{Robot: delivery.Robot{Name: "pool"}, Pool: []string{"theirs"}}}
			}
			th := newTheirs(t, theirsSetup{limit: limit, extra: extra, scan: scanEvery, sweep: tc.presence, content: "behind the storm"})
			w, lim, sim := th.w, th.lim, th.sim

			// The "owner" is granted a slot every 20ms (posting the storm's
			// other messages, as far as the scans can tell).
			granting, stopGrants := context.WithCancel(ctx)
			grantsDone := make(chan struct{})
			go func() {
				defer close(grantsDone)
				for granting.Err() == nil {
					d, err := lim.Reserve(ctx, "theirs", limit)
					if err != nil || !d.Allowed {
						t.Errorf("the owner's grant: %v %+v", err, d)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
			t.Cleanup(func() { stopGrants(); <-grantsDone })

			th.run(t)
			started := time.Now()

			if tc.shared {
				testenv.Eventually(t, 5*time.Second, func() bool { return w.Lanes() == 1 }, "rescued at the second scan")
				require.Less(t, time.Since(started), 5*scanEvery, "rescued at the second scan, grants or not")
				return
			}
			if tc.presence > 0 {
				// rescueAgain is 3 × 1s: no lane before, one soon after.
				for time.Since(started) < 3*tc.presence-100*time.Millisecond {
					require.Equal(t, 0, w.Lanes(), "a rescue lane while granted, %s after the start", time.Since(started))
					time.Sleep(20 * time.Millisecond)
				}
				testenv.Eventually(t, 5*time.Second, func() bool { return w.Lanes() == 1 }, "rescued while still granted")
				require.Less(t, time.Since(started), 3*tc.presence+4*scanEvery, "rescued a scan or two after three presence intervals")
				require.NoError(t, granting.Err(), "still granting")
				return
			}
			// Eight scans while granted: no lane.
			for time.Since(started) < 8*scanEvery {
				require.Equal(t, 0, w.Lanes(), "a rescue lane while its key is granted (%s after the start)", time.Since(started))
				time.Sleep(20 * time.Millisecond)
			}
			require.Empty(t, sim.Received("theirs"), "nobody served it")
			stopGrants()
			<-grantsDone
			stopped := time.Now()
			testenv.Eventually(t, 5*time.Second, func() bool { return len(sim.Received("theirs")) == 1 }, "rescued once the grants stopped")
			require.Less(t, time.Since(stopped), 5*scanEvery, "rescued a few scans after the last grant")
			require.Equal(t, "behind the storm", sim.Received("theirs")[0].Content)
			require.Equal(t, 1, w.Lanes(), "the rescue lane")
		})
	}
}

// The scans a deferral holds off read no limiter state: a grant made
// then (the owner's lane posting as the window freed) still counts as
// progress at the first scan after the deferral, which therefore rescues
// nothing. (Comparing grants with the previous scan's time, it lost that
// grant and rescued the robot beside its owner.) The scans are called one
// by one on a worker that does not run, so the rescue shows in seen.
func TestScanCountsGrantsMadeDuringADeferral(t *testing.T) {
	const scanEvery = 500 * time.Millisecond
	limit := limiter.Limit{Max: 1, Window: time.Second}
	ctx := context.Background()
	th := newTheirs(t, theirsSetup{limit: limit, scan: scanEvery, content: "storm"})
	w, lim := th.w, th.lim
	grant := func() {
		t.Helper()
		d, err := lim.Reserve(ctx, "theirs", limit)
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}

	seen := map[string]seenBacklog{}
	w.scan(ctx, seen)
	require.Equal(t, uint64(1), seen["theirs"].count, "the first scan notes the count")
	grant()
	w.scan(ctx, seen)
	require.False(t, seen["theirs"].rescued, "granted since: progress")
	require.True(t, seen["theirs"].until.IsZero())
	w.scan(ctx, seen)
	until := seen["theirs"].until
	require.False(t, until.IsZero(), "no grant since, the window full: deferred")
	require.False(t, seen["theirs"].rescued)
	// The owner posts the moment the window frees, while deferred.
	testenv.Eventually(t, 2*time.Second, func() bool {
		d, err := lim.Reserve(ctx, "theirs", limit)
		require.NoError(t, err)
		return d.Allowed
	}, "the next slot")
	require.True(t, time.Now().Before(until), "granted within the deferral")
	w.scan(ctx, seen)
	require.Equal(t, until, seen["theirs"].until, "still deferred: the limiter is not read")
	time.Sleep(time.Until(until) + 10*time.Millisecond)
	w.scan(ctx, seen)
	require.False(t, seen["theirs"].rescued, "the grant made during the deferral is progress")
	require.True(t, seen["theirs"].until.IsZero(), "a new standstill")
	require.Zero(t, w.Lanes())
}
