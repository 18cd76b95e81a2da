package worker

import (
	"context"
	"reflect"
	"slices"
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
	var added, changed, removed int
	var newNames []string
	for name, rb := range next.byName {
		old, ok := prev.byName[name]
		switch {
		case !ok:
			added++
			newNames = append(newNames, name)
		case !sameRobot(old, rb):
			changed++
		}
	}
	if w.cfg.Presence != nil && w.started.Load() && added > 0 {
		// Before any lane of an added robot can start, not at the next
		// presence interval: until then another worker's sweep takes an
		// added robot for one nobody serves (its two sightings are one
		// sweep interval apart, this worker's next announcement may come
		// later), deletes the consumer of its lane and dead-letters its
		// messages as unknown_robot. The robots removed stay announced
		// until the next interval: their lanes may still hold a message.
		a := w.announcement(false) // of prev: not swapped yet
		a.Robots = append(a.Robots, newNames...)
		slices.Sort(a.Robots)
		actx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		w.announceWith(actx, a)
		cancel()
	}
	w.set.Store(next)
	w.setPools(next.pools)
	for name := range prev.byName {
		if _, ok := next.byName[name]; !ok {
			removed++
			w.noConsumer.clear(name)
			w.m.forget(name)
		}
	}
	w.m.unserved.Set(float64(w.noConsumer.count()))
	w.log.Info("robots reloaded", "robots", len(next.byName), "added", added, "changed", changed, "removed", removed)
	if added > 0 {
		w.rescan()
	}
	return nil
}

// sameRobot reports whether two configurations of a robot are the same
// (for the reload's log line).
func sameRobot(a, b *Robot) bool { return reflect.DeepEqual(*a, *b) }
