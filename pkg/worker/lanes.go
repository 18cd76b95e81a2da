package worker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/limiter"
)

// ownership tells which robots this worker serves when several workers
// share the fleet (owner.go implements it over the presence registry).
// A worker starts lanes only for robots it owns, and a running lane whose
// robot it no longer owns stops after its current message.
type ownership interface {
	Owns(robot string) bool
}

// robotSet is one configuration of robots: immutable once built, swapped
// whole by [Worker.Reload].
type robotSet struct {
	byName map[string]*Robot
	// sems is the write slot semaphore of each robot's webhook host, by
	// robot; hosts holds them by host, so a reload keeps the semaphore
	// (and the requests being written under it) of a host still in use.
	sems  map[string]chan struct{}
	hosts map[string]chan struct{}
	// pools holds the rotation of each robot pool, by pool name (pool.go):
	// a reload starts them afresh, every member in rotation.
	pools map[string]*pool
	// sharedKeys are the limiter keys that more than one configured robot
	// reserves under: two robots of one platform identity, and every pool
	// member's (the pool posts through it). A grant under such a key says
	// nothing of one robot's lane ([Worker.scan]).
	sharedKeys map[string]bool
}

// newRobotSet validates robots and builds their set; prev's host
// semaphores are kept for hosts still in use.
func newRobotSet(robots []Robot, concurrency int, prev *robotSet) (*robotSet, error) {
	s := &robotSet{byName: make(map[string]*Robot, len(robots)), sems: make(map[string]chan struct{}, len(robots)),
		hosts: map[string]chan struct{}{}}
	for i := range robots {
		r := robots[i] // a copy: the caller may reuse its slice
		if r.Name == "" {
			return nil, fmt.Errorf("%w: robot %d has no name", ErrInvalidConfig, i)
		}
		if _, dup := s.byName[r.Name]; dup {
			return nil, fmt.Errorf("%w: robot %q configured twice", ErrInvalidConfig, r.Name)
		}
		if len(r.Pool) == 0 && (r.Limit.Max <= 0 || r.Limit.Window <= 0) {
			return nil, fmt.Errorf("%w: robot %q: limit needs Max > 0 and Window > 0", ErrInvalidConfig, r.Name)
		}
		s.byName[r.Name] = &r
		host := webhookHost(r.Webhook)
		if s.hosts[host] == nil {
			if prev != nil && prev.hosts[host] != nil {
				s.hosts[host] = prev.hosts[host]
			} else {
				s.hosts[host] = make(chan struct{}, concurrency)
			}
		}
		s.sems[r.Name] = s.hosts[host]
	}
	if len(s.byName) == 0 {
		return nil, fmt.Errorf("%w: no robots", ErrInvalidConfig)
	}
	pools, err := buildPools(robots, s.byName) // pool.go
	if err != nil {
		return nil, err
	}
	s.pools = pools
	s.sharedKeys = sharedKeys(s.byName, pools)
	return s, nil
}

// sharedKeys returns the limiter keys more than one robot of byName
// reserves under (see robotSet.sharedKeys).
func sharedKeys(byName map[string]*Robot, pools map[string]*pool) map[string]bool {
	users := make(map[string]int, len(byName))
	for _, rb := range byName {
		if len(rb.Pool) == 0 && !rb.Replies {
			users[rb.limitKey()]++
		}
	}
	shared := map[string]bool{}
	for k, n := range users {
		if n > 1 {
			shared[k] = true
		}
	}
	for _, p := range pools {
		for _, m := range p.members {
			shared[m.limitKey()] = true
		}
	}
	return shared
}

// poolOf returns the rotation of the pool named name, nil for a robot that
// is not a pool.
func (w *Worker) poolOf(name string) *pool { return w.set.Load().pools[name] }

// robot returns the current configuration of the named robot.
func (w *Worker) robot(name string) (*Robot, bool) {
	rb, ok := w.set.Load().byName[name]
	return rb, ok
}

// robotMap is the current robots by name; the map must not be changed.
func (w *Worker) robotMap() map[string]*Robot { return w.set.Load().byName }

// sem is the write slot semaphore of robot's webhook host. A robot
// removed by a reload while one of its messages is handled keeps the
// semaphore of the set it was handled under.
func (w *Worker) sem(robot string) chan struct{} {
	if s := w.set.Load().sems[robot]; s != nil {
		return s
	}
	w.semMu.Lock()
	defer w.semMu.Unlock()
	if w.orphanSem == nil {
		w.orphanSem = make(chan struct{}, w.cfg.Concurrency)
	}
	return w.orphanSem
}

// Robots returns the names of the robots currently configured, sorted
// (presence announces them).
func (w *Worker) Robots() []string {
	m := w.set.Load().byName
	out := make([]string, 0, len(m))
	for name := range m {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// robotNames is [Worker.Robots] (what the presence announces).
func (w *Worker) robotNames() []string { return w.Robots() }

// servable returns robot's configuration when this worker serves it:
// configured, and owned (with an owner) unless rescue.
func (w *Worker) servable(robot string, rescue bool) (*Robot, bool) {
	rb, ok := w.robot(robot)
	if !ok || (!rescue && w.owner != nil && !w.owner.Owns(robot)) {
		return nil, false
	}
	return rb, true
}

// rescan asks for a scan of the outbound stream at once, without waiting
// for it (the owner code calls it when the workers' membership changes).
func (w *Worker) rescan() {
	select {
	case w.scanNow <- struct{}{}:
	default:
	}
}

// laneSet is the running lanes, at most one per robot.
type laneSet struct {
	mu     sync.Mutex
	ctx    context.Context
	m      map[string]*laneState
	closed bool
	wg     sync.WaitGroup
}

// laneState is one running lane. wake holds a pending announcement: a
// message stored after the lane's last pull began. A rescue lane serves a
// robot this worker does not own (see [Worker.scan]) until it goes idle.
type laneState struct {
	robot  string
	wake   chan struct{}
	rescue bool
}

// close stops new lanes and waits for the running ones to drain.
func (ls *laneSet) close() {
	ls.mu.Lock()
	ls.closed = true
	ls.mu.Unlock()
	ls.wg.Wait()
}

// running is the number of running lanes.
func (ls *laneSet) running() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return len(ls.m)
}

// wake starts robot's lane, or tells the running one a message arrived.
// Robots this worker does not serve are ignored (the sweep takes care of
// robots nobody serves). startOnly leaves a running lane alone.
func (w *Worker) wake(robot string, startOnly bool) { w.startLane(robot, startOnly, false) }

// startLane is wake; rescue starts the lane of a configured robot this
// worker does not own.
func (w *Worker) startLane(robot string, startOnly, rescue bool) {
	if _, ok := w.servable(robot, rescue); !ok {
		return
	}
	ls := &w.lanes
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.closed || ls.ctx == nil || ls.ctx.Err() != nil {
		return
	}
	if l := ls.m[robot]; l != nil {
		if !startOnly {
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
		return
	}
	if ls.m == nil {
		ls.m = map[string]*laneState{}
	}
	l := &laneState{robot: robot, wake: make(chan struct{}, 1), rescue: rescue}
	ls.m[robot] = l
	ctx := ls.ctx
	ls.wg.Go(func() { w.lane(ctx, l) })
}

// stopLane removes l unless a message was announced since its last pull
// began (force stops it anyway); it reports whether l stopped.
func (w *Worker) stopLane(l *laneState, force bool) bool {
	ls := &w.lanes
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if !force && len(l.wake) > 0 {
		return false
	}
	if ls.m[l.robot] == l {
		delete(ls.m, l.robot)
	}
	return true
}

// consumerInactive is the InactiveThreshold of the lanes' consumers: past
// the longest a lane goes without pulling (idle, then holding a message
// through HoldMax and a request), so the server deletes only the
// consumers of robots without a lane.
func (w *Worker) consumerInactive() time.Duration {
	return w.cfg.LaneIdle + w.cfg.HoldMax + w.cfg.RequestTimeout + w.cfg.AckWait
}

// lane serves one robot: it ensures the robot's consumer, then pulls and
// handles its messages one at a time, until ctx is done, the robot is no
// longer this worker's (removed by a reload, or owned by another worker),
// or it pulled nothing for LaneIdle with no message of its own due back.
//
// A lane fetches one message at a time until a message shows more behind
// it; from then on it keeps one long-lived pull on the consumer
// ([Worker.openPull]): a pull request for a batch stays open at the
// server, which hands the next message over as soon as the previous one
// is acknowledged. A Fetch per message (a subscription, a request and an
// unsubscription each) made the server, not the work, the bound on a busy
// fleet.
func (w *Worker) lane(ctx context.Context, l *laneState) {
	name := l.robot
	var c jetstream.Consumer
	var it jetstream.MessagesContext // the long-lived pull on c
	// streaming is set once a message showed more behind it: the lane then
	// pulls through it. Until then a Fetch per message is cheaper (a
	// fan-out gives thousands of robots one message each).
	streaming := false
	errWait := time.Second
	var refreshed time.Time // of c's cached info
	lastMsg := time.Now()
	var dueBack time.Time // a message this lane handed back comes back then
	defer func() {
		closePull(&it)
		w.stopLane(l, true)
		if c == nil {
			w.noConsumer.clear(name)
			w.m.unserved.Set(float64(w.noConsumer.count()))
		}
	}()
	for ctx.Err() == nil {
		rb, ok := w.servable(name, l.rescue)
		if !ok {
			return
		}
		if !w.cfg.ConsumerLanes && rb.Digest == nil {
			// direct.go; a reload that makes it a digest robot comes back.
			if !w.directLane(ctx, l) {
				return
			}
			continue
		}
		if rb.Digest != nil {
			// A digest robot's lane holds its backlog (digest.go); it
			// returns when a reload changes the robot, or idle.
			closePull(&it)
			if w.digestLane(ctx, l, rb, c) {
				return // idle, like any lane
			}
			c = nil // made for the digest's backlog
			continue
		}
		if c == nil {
			nc, err := w.ensureConsumer(ctx, name)
			if err != nil {
				if ctx.Err() == nil {
					// Loud: a server limit (10026 "maximum consumers limit
					// reached") or trouble. The lane keeps trying.
					w.noConsumer.set(name, err)
					w.m.unserved.Set(float64(w.noConsumer.count()))
					w.log.Error("could not create robot consumer: the robot is not served", "robot", name, "err", err, "retry_in", errWait)
					sleep(ctx, errWait)
					errWait = min(2*errWait, 30*time.Second)
				}
				continue
			}
			c, refreshed, errWait = nc, time.Now(), time.Second
			w.noConsumer.clear(name)
			w.m.unserved.Set(float64(w.noConsumer.count()))
		}
		if it == nil && streaming {
			nit, err := w.openPull(c)
			if err != nil {
				w.log.Warn("could not pull from the robot consumer", "robot", name, "err", err)
				if c, refreshed = w.checkConsumer(ctx, rb, c, refreshed); c != nil {
					sleep(ctx, time.Second)
				}
				continue
			}
			it = nit
		}
		// An announcement from now on is of a message this pull may miss.
		select {
		case <-l.wake:
		default:
		}
		var msg jetstream.Msg
		var err error
		if it != nil {
			msg, err = it.Next(jetstream.NextMaxWait(w.cfg.FetchWait))
		} else {
			msg, err = c.Next(jetstream.FetchMaxWait(w.cfg.FetchWait))
		}
		if err != nil {
			switch {
			case ctx.Err() != nil:
			case errors.Is(err, jetstream.ErrNoMessages), errors.Is(err, nats.ErrTimeout):
				now := time.Now()
				if now.Sub(lastMsg) >= w.cfg.LaneIdle && !now.Before(dueBack) && w.stopLane(l, false) {
					// A message the pull received meanwhile is handed back
					// at once (a new lane takes it: its announcement
					// arrives after this lane left the set).
					closePull(&it)
					w.dropIdleConsumer(ctx, c)
					return
				}
				// Now and then make sure the consumer still exists.
				if now.Sub(refreshed) >= max(10*w.cfg.FetchWait, 5*time.Second) {
					if c, refreshed = w.checkConsumer(ctx, rb, c, refreshed); c == nil {
						closePull(&it)
					}
				}
			case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrConsumerDeleted):
				// Deleted by an operator, or lost with the server's state:
				// create it again rather than stop serving the robot.
				w.log.Warn("robot consumer is gone; creating it again", "robot", name)
				closePull(&it)
				c = nil
			case errors.Is(err, jetstream.ErrMsgIteratorClosed):
				it = nil // stopped by the client (a closed connection): pull again
				sleep(ctx, 100*time.Millisecond)
			default:
				// Missed heartbeats (a server restart, a consumer lost
				// without notice), or JetStream down: see whether the
				// consumer is still there, and pull afresh.
				w.log.Warn("pull failed", "robot", name, "err", err)
				closePull(&it)
				if c, refreshed = w.checkConsumer(ctx, rb, c, refreshed); c != nil {
					sleep(ctx, time.Second)
				}
			}
			continue
		}
		if ctx.Err() != nil { // arrived while stopping: hand it back at once
			_ = msg.Nak()
			return
		}
		// The configuration of now, not of when the pull began (a reload).
		if rb, ok = w.servable(name, l.rescue); !ok {
			_ = msg.Nak() // removed or no longer owned meanwhile
			return
		}
		if !streaming {
			md, err := msg.Metadata()
			streaming = err == nil && md.NumPending > 0
		}
		ackWait := w.cfg.AckWait
		if cw := c.CachedInfo().Config.AckWait; cw > 0 {
			ackWait = min(ackWait, cw)
		}
		// Another worker may have set a shorter AckWait on the shared
		// consumer since this one read it: the heartbeat refreshes it.
		// (handle returns after the heartbeat stopped, so its write of
		// refreshed is seen here.)
		var refresh func()
		if time.Since(refreshed) >= w.cfg.AckWait/3 {
			refresh = func() { refreshed = time.Now() }
		}
		a := w.handle(ctx, rb, msg, c, ackWait, refresh)
		lastMsg = time.Now()
		if a.delay > 0 && (a.verb == doRetry || a.verb == doWait) {
			// Handed back for later: the lane stays (and keeps the consumer
			// from expiring) until it is due, with a pull's slack.
			dueBack = maxTime(dueBack, lastMsg.Add(a.delay+w.cfg.FetchWait))
		}
	}
}

// pullBatch is how many messages a lane's pull request asks for. The
// robot's consumer hands out one at a time (MaxAckPending 1), so this only
// sets how often the request is renewed: at half of it.
const pullBatch = 32

// pullExpiry is how long a lane's pull request lasts at the server.
const pullExpiry = 30 * time.Second

// openPull opens the lane's long-lived pull on c. Its requests last
// pullExpiry, with a heartbeat from the server every half of it: a lane
// waiting for LaneIdle costs the server next to nothing (after a fan-out,
// thousands of lanes wait at once; requests of FetchWait, with a heartbeat
// every second, took 3,000 messages a second from the deliveries). A
// stopped lane's request is gone from the server as soon as the lane
// unsubscribed ([closePull]), whatever its expiry; a consumer lost
// meanwhile is found by the lane's own checks.
func (w *Worker) openPull(c jetstream.Consumer) (jetstream.MessagesContext, error) {
	it, err := c.Messages(jetstream.PullMaxMessages(pullBatch), jetstream.PullExpiry(pullExpiry))
	if err != nil {
		return nil, fmt.Errorf("pull from %s: %w", c.CachedInfo().Name, err)
	}
	return it, nil
}

// closePull ends the lane's pull *it, if any, and sets it to nil. Any
// message the pull had received but the lane not taken is handed back at
// once, in the order received, so it is not held until AckWait. Draining
// unsubscribes and then delivers what the server sent before; closePull
// waits at most a second for that.
func closePull(pit *jetstream.MessagesContext) {
	it := *pit
	if it == nil {
		return
	}
	*pit = nil
	it.Drain()
	for {
		m, err := it.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				it.Stop()
			}
			return
		}
		_ = m.Nak()
	}
}

// dropIdleConsumer deletes the consumer of a robot whose lane stopped
// idle, when nothing is pending on it and no pull waits on it (another
// worker's lane). On a work-queue stream the server looks at every
// consumer on each acknowledgement, so consumers left to their
// InactiveThreshold after a fan-out to thousands of robots make every
// message slower. A message stored meanwhile stays in the stream and wakes
// a new lane, which creates the consumer again; a lane that loses its
// consumer under it creates it again too.
func (w *Worker) dropIdleConsumer(ctx context.Context, c jetstream.Consumer) {
	if c == nil {
		return
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := c.Info(ictx)
	if err != nil || info.NumAckPending > 0 || info.NumPending > 0 || info.NumWaiting > 0 {
		return // the server's InactiveThreshold deletes it once idle
	}
	if err := w.js.DeleteConsumer(ictx, w.cfg.Topology.OutStream(), info.Name); err != nil &&
		!errors.Is(err, jetstream.ErrConsumerNotFound) && ctx.Err() == nil {
		w.log.Debug("could not delete an idle robot consumer; the server will", "consumer", info.Name, "err", err)
	}
}

// ensureConsumer creates or updates robot's consumer, at most
// consumerCreates at a time per worker: a fan-out starts thousands of lanes
// at once, and the server's JetStream API, serving them one after another,
// would let most of them time out.
func (w *Worker) ensureConsumer(ctx context.Context, robot string) (jetstream.Consumer, error) {
	select {
	case w.creates <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-w.creates }()
	return w.cfg.Topology.EnsureLaneConsumer(ctx, w.js, robot, w.cfg.AckWait, w.consumerInactive())
}

// consumerCreates bounds a worker's concurrent consumer creations.
const consumerCreates = 1

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// subscribeWork subscribes to the outbound stream's announcements: each
// wakes its robot's lane.
func (w *Worker) subscribeWork(ctx context.Context) (*nats.Subscription, error) {
	w.lanes.mu.Lock()
	w.lanes.ctx = ctx
	w.lanes.mu.Unlock()
	topo := w.cfg.Topology
	sub, err := w.js.Conn().Subscribe(topo.WorkSubjects(), func(m *nats.Msg) {
		w.wake(topo.RobotFromSubject(m.Subject), false)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", topo.WorkSubjects(), err)
	}
	// A fan-out announces one message per robot at once; one dropped (a
	// slow consumer) is found by the next scan, but better not.
	_ = sub.SetPendingLimits(1<<20, 256<<20)
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.js.Conn().FlushWithContext(fctx); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe to %s: %w", topo.WorkSubjects(), err)
	}
	return sub, nil
}

// scanLoop scans at start, every ScanInterval, after each reconnect of
// the NATS connection and on [Worker.rescan], until ctx is done.
// scanTimeout bounds one scan of the outbound stream; scanRetry is how
// soon a failed scan is tried again.
const (
	scanTimeout = 30 * time.Second
	scanRetry   = 2 * time.Second
)

func (w *Worker) scanLoop(ctx context.Context) {
	nc := w.js.Conn()
	reconnects := nc.Stats().Reconnects
	seen := map[string]seenBacklog{}
	w.scan(ctx, seen)
	last := time.Now()
	tick := time.NewTicker(min(time.Second, w.cfg.ScanInterval))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.scanNow:
		case <-tick.C:
			// Announcements made while disconnected were lost.
			if r := nc.Stats().Reconnects; r != reconnects && nc.IsConnected() {
				reconnects = r
			} else if time.Since(last) < w.cfg.ScanInterval {
				continue
			}
		}
		w.scan(ctx, seen)
		last = time.Now()
	}
}

// seenBacklog is what a scan saw of a configured robot this worker does
// not own: its message count, and whether a rescue lane was started at it.
type seenBacklog struct {
	count   uint64
	rescued bool
	at      time.Time // of the rescue
	// until, when set, is when the wait its limiter gave for this
	// standstill ends (plus one ScanInterval): no rescue before, and no
	// second deferral of the same standstill.
	until time.Time
	// grantsTo: the limiter's grants under the robot's key up to this
	// moment are accounted for; a newer one is progress (see
	// [Worker.scan]).
	grantsTo time.Time
	// still is since when the count has not gone down: grants count as
	// progress for [Worker.rescueAgain] from then, no longer.
	still time.Time
}

// rescueAgain is how long after a rescue lane was started at an unchanged
// count another one is: three presence intervals, the longest a dead
// owner's announcement lasts. A robot still not moving then has an owner
// that is announced but does not serve it (cut off from NATS), and a
// message of it handed back for longer than the first rescue lane's
// LaneIdle would otherwise wait for as long as that owner lives.
func (w *Worker) rescueAgain() time.Duration { return 3 * w.presenceInterval() }

// scan starts the lanes of the robots this worker serves that have
// messages in the outbound stream and no lane: one request, whatever the
// fleet's size.
//
// A configured robot owned by another worker whose message count did not
// go down since the last scan gets a rescue lane
// here, once per count, and again after [Worker.rescueAgain] at the same
// count: its owner may have died (its presence outlives it by up to three
// presence intervals). Unless its limiter tells otherwise (see
// [Worker.limitStates]):
//   - a grant under its key newer than the last one accounted for (or
//     than the scan that began watching its count), a key no other robot
//     reserves under, is progress: some lane of it is posting (an alert
//     storm's backlog grows faster than its limit drains it). Scans that
//     a deferral (below) holds off do not read the limiter: the grants
//     they did not read count at the next scan that does. Grants hold a
//     rescue off for [Worker.rescueAgain] at most while the count does
//     not go down;
//   - a limit that grants no slot now explains the standstill: the rescue
//     waits, once per standstill, until one ScanInterval after the
//     limiter's wait ends.
//
// A rescue lane beside a live owner costs reads, never order or limits (a
// direct lane handles only the first message and needs the ledger's claim
// to post it, and a waiting message's wait mark holds it off; a consumer
// lane's consumer hands out one message at a time); it stops when idle
// like any lane. seen keeps those counts from scan to scan.
func (w *Worker) scan(ctx context.Context, seen map[string]seenBacklog) {
	start := time.Now() // grants before it are older than the counts read
	// A server busy with a big backlog answers the per-subject counts late:
	// more time than JetStream's default 5s, and another try soon rather
	// than a ScanInterval later (robots whose announcements went before
	// this worker listened are found only by a scan).
	sctx, cancel := context.WithTimeout(ctx, scanTimeout)
	pending, err := w.cfg.Topology.PendingRobots(sctx, w.js)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("could not scan the outbound stream for robots with messages; trying again", "err", err, "retry_in", scanRetry)
			time.AfterFunc(scanRetry, w.rescan)
		}
		return
	}
	for robot := range seen {
		if pending[robot] == 0 {
			delete(seen, robot)
		}
	}
	var stalled []string
	for robot, n := range pending {
		if n == 0 {
			continue
		}
		if _, ok := w.servable(robot, false); ok {
			delete(seen, robot)
			w.wake(robot, true)
			continue
		}
		if _, ok := w.robot(robot); !ok {
			delete(seen, robot) // the sweep's (re-added by a reload: anew)
			continue
		}
		prev, ok := seen[robot]
		switch {
		case ok && n >= prev.count && (!prev.rescued || time.Since(prev.at) >= w.rescueAgain()):
			// Not one message settled since the last scan (a growing
			// backlog is no progress either: an owner cut off from NATS
			// but still announced would otherwise keep a busy robot
			// unserved for as long as its messages keep coming).
			stalled = append(stalled, robot)
		case !ok || n < prev.count:
			seen[robot] = seenBacklog{count: n, grantsTo: start, still: start}
		case prev.count != n:
			seen[robot] = seenBacklog{count: n, grantsTo: start, still: prev.still}
		}
	}
	now := time.Now()
	var ask []string // stalled robots not held off by a deferral
	for _, robot := range stalled {
		if !now.Before(seen[robot].until) {
			ask = append(ask, robot)
		}
	}
	states := w.limitStates(ctx, ask)
	shared := w.set.Load().sharedKeys
	for _, robot := range stalled {
		n, prev := pending[robot], seen[robot]
		rs, got := states[robot]
		if rb, ok := w.robot(robot); ok && got && !shared[rb.limitKey()] && now.Sub(prev.still) < w.rescueAgain() &&
			rs.grantAfter(prev.grantsTo) {
			// Granted since the last grant accounted for, under a key of
			// its own: its owner (or a rescue lane already) is posting
			// to it. A standstill starts afresh. For rescueAgain at most
			// while the count does not go down: another worker's robot
			// this one does not know may share the key (its grants would
			// be taken for this robot's), and an owner cut off from NATS
			// but announced is rescued after that long anyway.
			seen[robot] = seenBacklog{count: n, grantsTo: rs.at, still: prev.still}
			w.log.Debug("robot of another worker was granted a slot since the last scan; its backlog is served", "robot", robot, "messages", n)
			continue
		}
		if d := limitWait(rs.st); got && prev.until.IsZero() && d > 0 {
			// Its limit explains it: nobody may post to it for d. One
			// ScanInterval more for its owner's lane to wake and post; a
			// scan after that which sees no progress rescues it, whatever
			// the limiter says then (someone else may keep the window
			// full: a pool sharing a member's window).
			prev.until = now.Add(d + w.cfg.ScanInterval)
		}
		if now.Before(prev.until) {
			prev.count = n
			seen[robot] = prev
			w.log.Debug("robot of another worker made no progress since the last scan, waiting for its rate limit; not pulling it yet", "robot", robot, "messages", n, "until", prev.until)
			continue
		}
		w.log.Info("robot of another worker made no progress since the last scan; pulling it too", "robot", robot, "messages", n)
		grantsTo := now // a robot not read
		if got {
			grantsTo = rs.at
		}
		seen[robot] = seenBacklog{count: n, rescued: true, at: now, grantsTo: grantsTo, still: prev.still}
		w.startLane(robot, true, true)
	}
}

// limitReadsAtOnce bounds the limiter reads of one scan in flight (with
// an autopipelined client, they share pipelines).
const limitReadsAtOnce = 32

// limitWait is how long st's limiter grants no slot (a full window, a
// cool-off, a restart-guard quiet time that has started): a robot's lack
// of progress that long is no sign of an owner that does not serve it.
// Without it, an alert storm's robots all got rescue lanes in the minute
// after their quota was spent, and two lanes then raced for every message
// of the next minute (bench-scale's saturation: 1,422 rescue lanes for
// 2,000 robots, ~100,000 reads of messages another lane had posted).
//
// The quiet time counts once it has started (after a Redis restart the
// first Reserve of any robot starts it for all, and every robot stands
// still that long), not while it is pending: a robot nobody serves would
// then wait for a Reserve that may never come (its epoch its own, as with
// Redis Cluster's per-robot keys). A Limit's Also windows do not count
// (Inspect reads the main one): a robot held by one of them is rescued as
// before.
func limitWait(st limiter.State) time.Duration {
	d := max(st.WindowLeft, st.CoolOffLeft)
	if !st.QuietPending {
		d = max(d, st.QuietLeft)
	}
	return d
}

// limitRead is one robot's limiter state and when it was asked for.
type limitRead struct {
	st limiter.State
	at time.Time // just before the read
}

// grantAfter reports whether the read saw a grant made after t. A grant's
// time by this clock is at most when it was made (the read came after
// at); grants up to at are accounted for once the read is used, a later
// one is in the next read. A grant dated ahead of Redis's clock is no
// evidence.
func (r limitRead) grantAfter(t time.Time) bool {
	return r.st.InWindow > 0 && r.st.LastGrantAgo >= 0 && r.at.Add(-r.st.LastGrantAgo).After(t)
}

// limitStates reads the limiter state of robots, for [Worker.scan]. A
// pool, a reply robot and a digest robot (no one window says it) are not
// read, nor is any robot when the limiter is no [limiter.Inspector]; a
// robot whose read failed is left out.
func (w *Worker) limitStates(ctx context.Context, robots []string) map[string]limitRead {
	if _, ok := w.cfg.Limiter.(limiter.Inspector); !ok || len(robots) == 0 {
		return nil // nothing to ask (the reads would all fail alike)
	}
	// One bound for all the reads: a Redis that does not answer costs
	// the scan that long once, and rescues what it could not read.
	ictx, cancel := context.WithTimeout(ctx, directOpTimeout)
	defer cancel()
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		sem    = make(chan struct{}, limitReadsAtOnce)
		states = make(map[string]limitRead)
	)
	for _, name := range robots {
		rb, ok := w.robot(name)
		if !ok || len(rb.Pool) > 0 || rb.Replies || rb.Digest != nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			at := time.Now()
			st, ok := w.inspect(ictx, rb)
			if !ok {
				return
			}
			mu.Lock()
			states[name] = limitRead{st: st, at: at}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return states
}

// Lanes is the number of robots whose lane is running: those with work
// now or within the last LaneIdle.
func (w *Worker) Lanes() int { return w.lanes.running() }
