package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/envelope"
)

// sweepLoop periodically dead-letters messages published for robots this
// worker does not know, so they are never stuck in the stream unseen.
func (w *Worker) sweepLoop(ctx context.Context) {
	idle := map[string]int{}
	for {
		if err := w.sweep(ctx, idle); err != nil && ctx.Err() == nil {
			w.log.Warn("unknown-robot sweep failed", "err", err)
		}
		if !sleep(ctx, w.cfg.SweepInterval) {
			return
		}
	}
}

// sweep drains the subjects of unconfigured robots into the dead-letter
// stream.
//
// A subject that still has a robot consumer is left alone while any worker
// pulls from it (the robot is configured there, e.g. during a rolling
// deploy): the work-queue stream refuses a second consumer on it. A robot
// consumer seen abandoned (no pull waiting, nothing pending) by two sweeps in
// a row belongs to a robot removed from every worker's config: it is deleted
// and its messages dead-lettered, never left in the stream unseen. idle
// counts those sightings per robot across sweeps.
func (w *Worker) sweep(ctx context.Context, idle map[string]int) error {
	pending, err := w.cfg.Topology.PendingRobots(ctx, w.js)
	if err != nil {
		return err
	}
	for name := range w.robots {
		w.m.backlog.WithLabelValues(name).Set(float64(pending[name]))
	}
	for robot := range idle {
		if _, ok := pending[robot]; !ok {
			delete(idle, robot)
		}
	}
	for robot := range pending {
		if _, ok := w.robots[robot]; ok {
			continue
		}
		swept, err := w.sweepRobot(ctx, robot)
		if err != nil {
			return err
		}
		if swept {
			delete(idle, robot)
			continue
		}
		if w.abandoned(ctx, robot) {
			idle[robot]++
		} else {
			delete(idle, robot)
		}
		if idle[robot] >= 2 {
			w.log.Warn("robot is configured on no worker; removing its idle consumer and dead-lettering its messages", "robot", robot)
			err := w.js.DeleteConsumer(ctx, w.cfg.Topology.OutStream(), w.cfg.Topology.ConsumerName(robot))
			if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return fmt.Errorf("worker: delete abandoned consumer of %s: %w", robot, err)
			}
			delete(idle, robot)
			if _, err := w.sweepRobot(ctx, robot); err != nil {
				return err
			}
		}
	}
	return nil
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

// sweepRobot dead-letters robot's messages through a temporary consumer. It
// reports false when another consumer owns the subject.
func (w *Worker) sweepRobot(ctx context.Context, robot string) (bool, error) {
	topo := w.cfg.Topology
	name := "unknown_" + robot
	c, err := w.js.CreateOrUpdateConsumer(ctx, topo.OutStream(), jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "botrelay: dead-letters messages for unconfigured robot " + robot,
		FilterSubject: topo.OutSubject(robot),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.cfg.AckWait,
		MaxDeliver:    -1,
	})
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerExists) || isOverlap(err) {
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
	md, err := msg.Metadata()
	if err != nil {
		return
	}
	rec := deadletter.Record{Robot: robot, Subject: msg.Subject(), Sequence: md.Sequence.Stream, Worker: w.cfg.Name,
		Reason: deadletter.ReasonUnknownRobot, Detail: fmt.Sprintf("no robot named %q is configured", robot)}
	id := ""
	if env, err := envelope.Decode(msg.Data()); err == nil {
		rec.Envelope, id = env, env.ID
	} else {
		rec.Raw = msg.Data()
	}
	w.deadLetter(ctx, msg, rec, id)
}

// isOverlap reports the work-queue stream's refusal of a second consumer on
// a subject (JetStream error 10100, "filtered consumer not unique").
func isOverlap(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == 10100
	}
	return false
}
