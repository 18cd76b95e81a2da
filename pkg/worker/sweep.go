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
	"github.com/botrelay/botrelay/pkg/stream"
)

// sweepLoop periodically announces this worker's robots (with a
// Presence) and dead-letters messages published for robots this worker
// does not know (unless the sweep is disabled), so they are never stuck in
// the stream unseen.
func (w *Worker) sweepLoop(ctx context.Context) {
	idle := map[string]int{}
	interval := w.presenceInterval()
	for {
		if w.cfg.Presence != nil {
			w.announce(ctx)
		}
		if w.cfg.SweepInterval > 0 {
			if err := w.sweep(ctx, idle); err != nil && ctx.Err() == nil {
				w.log.Warn("unknown-robot sweep failed", "err", err)
			}
		}
		if !sleep(ctx, interval) {
			return
		}
	}
}

// presenceInterval is how often the robots are announced: every sweep, or
// every 30s with the sweep disabled.
func (w *Worker) presenceInterval() time.Duration {
	if w.cfg.SweepInterval > 0 {
		return w.cfg.SweepInterval
	}
	return 30 * time.Second
}

// announce tells the Presence that this worker serves its robots, for
// three announcement intervals.
func (w *Worker) announce(ctx context.Context) {
	robots := w.Robots()
	if err := w.cfg.Presence.Announce(ctx, robots, 3*w.presenceInterval()); err != nil && ctx.Err() == nil {
		w.log.Warn("could not announce the robots this worker serves", "err", err)
	}
}

// sweep drains the subjects of unconfigured robots into the dead-letter
// stream.
//
// A subject that still has a robot consumer is left alone while any worker
// serves it (the robot is configured there, e.g. during a rolling deploy):
// the work-queue stream refuses a second consumer on it. A robot consumer
// seen unserved by two sweeps in a row belongs to a robot removed from
// every worker's config: it is deleted and its messages dead-lettered,
// never left in the stream unseen. Unserved is announced by no worker
// with a Presence, else abandoned (no pull waiting, nothing pending). idle
// counts those sightings per robot across sweeps.
func (w *Worker) sweep(ctx context.Context, idle map[string]int) error {
	pending, err := w.cfg.Topology.PendingRobots(ctx, w.js)
	if err != nil {
		return err
	}
	for name := range w.robotMap() {
		w.m.backlog.WithLabelValues(name).Set(float64(pending[name]))
	}
	for robot := range idle {
		if _, ok := pending[robot]; !ok {
			delete(idle, robot)
		}
	}
	var errs []error
	for robot := range pending {
		if _, ok := w.robot(robot); ok {
			continue
		}
		swept, err := w.sweepRobot(ctx, robot)
		if err != nil {
			// One subject's trouble must not keep the others unswept.
			errs = append(errs, err)
			continue
		}
		if swept {
			delete(idle, robot)
			continue
		}
		if w.unserved(ctx, robot) {
			idle[robot]++
		} else {
			delete(idle, robot)
		}
		if idle[robot] >= 2 {
			w.log.Warn("robot is configured on no worker; removing its idle consumer and dead-lettering its messages", "robot", robot)
			err := w.js.DeleteConsumer(ctx, w.cfg.Topology.OutStream(), w.cfg.Topology.ConsumerName(robot))
			if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				errs = append(errs, fmt.Errorf("worker: delete abandoned consumer of %s: %w", robot, err))
				continue
			}
			delete(idle, robot)
			if _, err := w.sweepRobot(ctx, robot); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// unserved reports whether robot's consumer exists and no worker serves
// it: announced by nobody with a Presence, else [Worker.abandoned]. An
// error counts as served.
func (w *Worker) unserved(ctx context.Context, robot string) bool {
	if w.cfg.Presence == nil {
		return w.abandoned(ctx, robot)
	}
	served, err := w.cfg.Presence.Served(ctx, robot)
	if err != nil {
		w.log.Warn("could not tell whether a robot is served", "robot", robot, "err", err)
		return false
	}
	if served {
		return false
	}
	_, err = w.js.Consumer(ctx, w.cfg.Topology.OutStream(), w.cfg.Topology.ConsumerName(robot))
	return err == nil
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
// reports false when another consumer owns the subject.
func (w *Worker) sweepRobot(ctx context.Context, robot string) (bool, error) {
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
	for ctx.Err() == nil {
		batch, err := c.Fetch(64, jetstream.FetchMaxWait(time.Second))
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
	j := &job{rb: &Robot{Robot: delivery.Robot{Name: robot}}, msg: msg,
		rec: deadletter.Record{Robot: robot, Subject: msg.Subject(), Worker: w.cfg.Name}}
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
