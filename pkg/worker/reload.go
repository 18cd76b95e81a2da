package worker

import (
	"context"
	"reflect"
	"time"
)

// Reload replaces the worker's robots while it runs. robots are validated
// as [New] validates them; invalid, an error wrapping [ErrInvalidConfig]
// is returned and nothing changes. Otherwise the new set takes effect at
// once, as a whole:
//
//   - an added robot is served (a scan of the outbound stream starts its
//     lane when it has messages); with a Presence, a reload that adds robots
//     announces the new set at once, so no other worker's
//     sweep takes an added robot for one nobody serves;
//   - a changed robot (webhook, secret, limit, keywords...) gets its new
//     configuration from its next message; the message being handled
//     finishes with the old one. Write semaphores are per webhook host: a
//     host still in use keeps its semaphore, and the requests being
//     written under it;
//   - a removed robot's lane stops after its current message; its waiting
//     messages stay in the stream for the workers still serving it, or
//     are dead-lettered as unknown_robot by the sweep once no worker does.
//
// Messages of unchanged robots, in flight or waiting, are not disturbed.
// Reload is safe to call from any goroutine, before or during [Worker.Run].
func (w *Worker) Reload(robots []Robot) error {
	w.reloadMu.Lock()
	defer w.reloadMu.Unlock()
	prev := w.set.Load()
	next, err := newRobotSet(robots, w.cfg.Concurrency, prev)
	if err != nil {
		return err
	}
	w.set.Store(next)
	w.setPools(next.pools)
	var added, changed, removed int
	for name, rb := range next.byName {
		old, ok := prev.byName[name]
		switch {
		case !ok:
			added++
		case !sameRobot(old, rb):
			changed++
		}
	}
	for name := range prev.byName {
		if _, ok := next.byName[name]; !ok {
			removed++
			w.noConsumer.clear(name)
		}
	}
	w.m.unserved.Set(float64(w.noConsumer.count()))
	w.log.Info("robots reloaded", "robots", len(next.byName), "added", added, "changed", changed, "removed", removed)
	if w.cfg.Presence != nil && w.started.Load() && added > 0 {
		// At once, not at the next presence interval: until then another
		// worker's sweep takes an added robot for one nobody serves (two
		// sightings are one sweep interval apart, the announcements of
		// this worker may come later), deleting the consumer of its lane
		// and dead-lettering its messages as unknown_robot. (A removal
		// waits for the next interval: the removed robot's lane may still
		// hold its current message.)
		actx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		w.announce(actx)
		cancel()
	}
	if added > 0 {
		w.rescan()
	}
	return nil
}

// sameRobot reports whether two configurations of a robot are the same
// (for the reload's log line).
func sameRobot(a, b *Robot) bool { return reflect.DeepEqual(*a, *b) }
