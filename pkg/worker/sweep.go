package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/stream"
)

// sweepLoop periodically announces this worker (with a Presence),
// refreshing its view of the live workers and so its share of the robots
// ([owner]), and dead-letters messages published for robots no worker
// serves (unless the sweep is disabled), so they are never stuck in the
// stream unseen. When ctx ends it announces that it leaves, so the other
// workers take over its robots at once.
func (w *Worker) sweepLoop(ctx context.Context) {
	idle := map[string]int{}
	interval := w.presenceInterval()
	if w.cfg.Presence != nil {
		defer w.leave(ctx)
	}
	// Workers started together (a rollout, a restart of them all) each
	// saw only those announced before it: the first one alone owns every
	// robot until its next look, and runs their lanes beside their owners
	// (in bench-scale's saturation ~30,000 reads of messages another lane
	// had posted, in the first 30 s). So the first looks come sooner
	// (gaps of 0.5s, 1s, 2s ... while shorter than the interval: see
	// firstLook); the sweep keeps its interval (its two sightings in a row
	// give a reloading worker that long to announce a new robot).
	quick := firstLook
	var swept time.Time
	for {
		var m *ledger.Members
		if w.cfg.Presence != nil {
			m = w.announce(ctx)
		}
		if w.cfg.SweepInterval > 0 && time.Since(swept) >= interval {
			swept = time.Now()
			if err := w.sweep(ctx, idle, m); err != nil && ctx.Err() == nil {
				w.log.Warn("unknown-robot sweep failed", "err", err)
			}
		}
		next := interval
		if w.cfg.Presence != nil && quick < interval {
			next, quick = quick, 2*quick
		}
		if !sleep(ctx, next) {
			return
		}
	}
}

// firstLook is how soon after its start a worker with a Presence looks at
// the live workers again; each gap after is twice the one before (looks
// at 0.5s, 1.5s, 3.5s, 7.5s ... after the start) until a gap would reach
// the presence interval.
const firstLook = 500 * time.Millisecond

// presenceInterval is how often the worker announces itself (after the
// quicker first looks, see [firstLook]): every SweepInterval, or every 30s
// with the sweep disabled.
func (w *Worker) presenceInterval() time.Duration {
	if w.cfg.SweepInterval > 0 {
		return w.cfg.SweepInterval
	}
	return 30 * time.Second
}

// announcement is what this worker tells the Presence: its robots and
// those it cannot serve, for three announcement intervals.
func (w *Worker) announcement(leaving bool) ledger.Announcement {
	return ledger.Announcement{Worker: w.holder, Robots: w.robotNames(), Unserved: w.noConsumer.reasons(),
		Leaving: leaving, TTL: 3 * w.presenceInterval()}
}

// announce tells the Presence that this worker runs and serves its
// robots, and returns the live workers (nil when the Presence could not be
// reached: nobody can tell then which robots are served).
func (w *Worker) announce(ctx context.Context) *ledger.Members {
	return w.announceWith(ctx, w.announcement(false))
}

// announceWith is [Worker.announce] of a.
func (w *Worker) announceWith(ctx context.Context, a ledger.Announcement) *ledger.Members {
	o, _ := w.owner.(*owner)
	if o == nil { // Run sets it; a worker used before Run
		o = &owner{self: w.holder, rescan: func() {}}
	}
	m, err := o.refresh(ctx, w.cfg.Presence, a)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("could not announce this worker or read the others", "err", err)
		}
		return nil
	}
	return m
}

// leave announces that this worker drains: its robots stay served (by it,
// until its announcement expires) but the others take over their lanes.
func (w *Worker) leave(ctx context.Context) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := w.cfg.Presence.Announce(lctx, w.announcement(true)); err != nil {
		w.log.Warn("could not announce that this worker leaves", "err", err)
	}
}

// sweep drains the subjects of robots configured on no live worker into
// the dead-letter stream.
//
// With a Presence (m is its view; nil when it could not be read, and then
// nothing is swept), a robot with messages that no live worker serves,
// seen so by two sweeps in a row, is taken as removed (or never
// configured): its consumer, if one was left behind, is deleted and its
// messages dead-lettered as unknown_robot. A robot in some worker's robot
// set is never swept, whether or not it has a consumer now (workers create
// consumers only while a robot has work). Two sightings, not one, so that
// a worker that just added the robot (a reload) has announced it.
//
// Without a Presence only this worker's configuration is known: a subject
// of an unconfigured robot that no consumer holds is swept at once, and a
// robot consumer seen [Worker.abandoned] by two sweeps in a row is
// deleted first. idle counts the sightings per robot across sweeps.
func (w *Worker) sweep(ctx context.Context, idle map[string]int, m *ledger.Members) error {
	pending, err := w.cfg.Topology.PendingRobots(ctx, w.js)
	if err != nil {
		return err
	}
	mine := map[string]bool{}
	for _, name := range w.robotNames() {
		mine[name] = true
		w.m.backlog.WithLabelValues(name).Set(float64(pending[name]))
	}
	for robot := range idle {
		if _, ok := pending[robot]; !ok || mine[robot] {
			delete(idle, robot)
		}
	}
	if w.cfg.Presence != nil && m == nil {
		clear(idle) // not two sightings in a row
		return nil
	}
	// A pass ends after one presence interval: the loop that sweeps also
	// announces this worker, and an announcement that expired (three
	// intervals) would make the other workers take the robots only this one
	// serves for removed ones. A big backlog is swept over several passes.
	until := time.Now().Add(w.presenceInterval())
	var errs []error
	for robot := range pending {
		if mine[robot] {
			continue
		}
		if !time.Now().Before(until) {
			break // the rest next time, their sightings not counted
		}
		if m != nil {
			if m.Served(robot) {
				delete(idle, robot)
				continue
			}
			if idle[robot]++; idle[robot] < 2 {
				continue
			}
		} else {
			swept, err := w.sweepRobot(ctx, robot, until)
			if err != nil {
				// One subject's trouble must not keep the others unswept.
				errs = append(errs, err)
				continue
			}
			if swept {
				delete(idle, robot)
				continue
			}
			if !w.abandoned(ctx, robot) {
				delete(idle, robot)
				continue
			}
			if idle[robot]++; idle[robot] < 2 {
				continue
			}
		}
		delete(idle, robot)
		if err := w.sweepRemoved(ctx, robot, until); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sweepRemoved dead-letters the messages of robot, taken as configured on
// no worker, deleting its robot consumer first if one holds the subject;
// it stops fetching at until.
func (w *Worker) sweepRemoved(ctx context.Context, robot string, until time.Time) error {
	swept, err := w.sweepRobot(ctx, robot, until)
	if err != nil || swept {
		return err
	}
	w.log.Warn("robot is configured on no worker; removing its idle consumer and dead-lettering its messages", "robot", robot)
	err = w.js.DeleteConsumer(ctx, w.cfg.Topology.OutStream(), w.cfg.Topology.ConsumerName(robot))
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("worker: delete abandoned consumer of %s: %w", robot, err)
	}
	_, err = w.sweepRobot(ctx, robot, until)
	return err
}

// abandoned reports whether robot's consumer exists with no pull waiting
// and no message pending: no worker serves it right now.
func (w *Worker) abandoned(ctx context.Context, robot string) bool {
	c, err := w.js.Consumer(ctx, w.cfg.Topology.OutStream(), w.cfg.Topology.ConsumerName(robot))
	if err != nil {
		return false
	}
	info := c.CachedInfo()
	return info.NumWaiting == 0 && info.NumAckPending == 0
}

// sweepConsumerConfig is the temporary consumer that dead-letters robot's
// messages. The server deletes it when it is left behind (a worker killed
// mid-sweep) and idle for its InactiveThreshold; a robot configured
// meanwhile deletes it at once ([stream.Topology.EnsureRobotConsumer]).
func sweepConsumerConfig(topo stream.Topology, robot string, ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:           topo.SweepConsumerName(robot),
		Description:       "botrelay: dead-letters messages for unconfigured robot " + robot,
		FilterSubject:     topo.OutSubject(robot),
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           ackWait,
		MaxDeliver:        -1,
		InactiveThreshold: max(2*ackWait, 30*time.Second),
	}
}

// sweepRobot dead-letters robot's messages through a temporary consumer. It
// reports false when another consumer owns the subject. It stops fetching
// at until (the messages left are swept by a later pass).
func (w *Worker) sweepRobot(ctx context.Context, robot string, until time.Time) (bool, error) {
	topo := w.cfg.Topology
	name := topo.SweepConsumerName(robot)
	c, err := w.js.CreateOrUpdateConsumer(ctx, topo.OutStream(), sweepConsumerConfig(topo, robot, w.cfg.AckWait))
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerExists) || stream.IsSubjectTaken(err) {
			return false, nil
		}
		return false, fmt.Errorf("worker: sweep consumer for %s: %w", robot, err)
	}
	hctx := context.WithoutCancel(ctx)
	for ctx.Err() == nil && time.Now().Before(until) {
		batch, err := c.Fetch(64, jetstream.FetchMaxWait(min(time.Second, max(time.Until(until), 50*time.Millisecond))))
		if err != nil {
			return true, fmt.Errorf("worker: sweep %s: %w", robot, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			w.deadLetterUnknown(hctx, robot, msg)
		}
		if n == 0 {
			break
		}
	}
	if err := w.js.DeleteConsumer(hctx, topo.OutStream(), name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		w.log.Warn("could not delete sweep consumer", "robot", robot, "err", err)
	}
	return true, nil
}

func (w *Worker) deadLetterUnknown(ctx context.Context, robot string, msg jetstream.Msg) {
	j := w.newJob(&Robot{Robot: delivery.Robot{Name: robot}}, msg)
	defer func() {
		if p := recover(); p != nil {
			w.recovered(ctx, j, p)
		}
	}()
	if md, err := msg.Metadata(); err == nil {
		j.rec.Sequence = md.Sequence.Stream
	}
	if env, err := envelope.Decode(msg.Data()); err == nil {
		j.env, j.rec.Envelope = env, env
	} else {
		j.rec.Raw = msg.Data()
	}
	w.apply(ctx, j, action{verb: doDeadLetter, reason: deadletter.ReasonUnknownRobot, event: "dead_letter",
		detail: fmt.Sprintf("no robot named %q is configured", robot)})
}
