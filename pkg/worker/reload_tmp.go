package worker

// TEMPORARY (branch h/reload): a stand-in for h/fleet's Worker.Reload, so
// that cmd/worker's hot reload can be built and tested before the two
// branches meet. The lead deletes this file at the merge and takes
// h/fleet's implementation. Known limits of this stand-in, none of which
// h/fleet's has: it writes the robot map and the robots' settings that
// running lanes read without a lock (racy under -race while a message of a
// changed robot is being handled); lanes started for added robots run
// until the process exits (they are not drained); a removed robot's lane
// holds its next message, undelivered, until the worker stops (then hands
// it back); a robot removed and added again is not served again.

import (
	"context"
	"fmt"
	"sync"
)

// reloadMu serialises Reload calls (stand-in: a package-level lock).
var reloadMu sync.Mutex

// Reload validates robots as [New] does (an error wrapping
// [ErrInvalidConfig], nothing changed) and swaps the robot set: added
// robots get a lane, changed ones take effect from their next message,
// removed ones stop being served and announced.
func (w *Worker) Reload(robots []Robot) error {
	reloadMu.Lock()
	defer reloadMu.Unlock()
	next := make(map[string]*Robot, len(robots))
	for i := range robots {
		r := robots[i]
		if _, dup := next[r.Name]; dup {
			return fmt.Errorf("%w: robot %q configured twice", ErrInvalidConfig, r.Name)
		}
		if len(r.Pool) == 0 && (r.Limit.Max <= 0 || r.Limit.Window <= 0) {
			return fmt.Errorf("%w: robot %q: limit needs Max > 0 and Window > 0", ErrInvalidConfig, r.Name)
		}
		next[r.Name] = &r
	}
	if len(next) == 0 {
		return fmt.Errorf("%w: no robots", ErrInvalidConfig)
	}
	if _, err := buildPools(robots, next); err != nil { // pool.go
		return err
	}
	byHost := map[string]chan struct{}{}
	for name, sem := range w.sems {
		if rb, ok := w.robots[name]; ok {
			byHost[webhookHost(rb.Webhook)] = sem
		}
	}
	robotsMap := make(map[string]*Robot, len(next))
	sems := make(map[string]chan struct{}, len(next)) // a removed robot has none: its lane blocks
	var added []*Robot
	for name, r := range next {
		host := webhookHost(r.Webhook)
		if byHost[host] == nil {
			byHost[host] = make(chan struct{}, w.cfg.Concurrency)
		}
		sems[name] = byHost[host]
		if old, ok := w.robots[name]; ok {
			*old = *r // the lane holds old: its next message sees the change
			robotsMap[name] = old
			continue
		}
		robotsMap[name] = r
		added = append(added, r)
	}
	w.sems, w.robots = sems, robotsMap
	pools, _ := buildPools(robots, robotsMap) // checked above
	w.setPools(pools)
	for _, r := range added {
		w.log.Info("robot added: starting its lane", "robot", r.Name)
		go w.lane(context.Background(), r, nil)
	}
	return nil
}
