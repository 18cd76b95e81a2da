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
	for {
		if err := w.sweep(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("unknown-robot sweep failed", "err", err)
		}
		if !sleep(ctx, w.cfg.SweepInterval) {
			return
		}
	}
}

// sweep drains the subjects of unconfigured robots into the dead-letter
// stream. A subject another worker has a consumer for (a robot configured
// there, during a rolling deploy) is left alone: the work-queue stream
// refuses a second consumer on it.
func (w *Worker) sweep(ctx context.Context) error {
	pending, err := w.cfg.Topology.PendingRobots(ctx, w.js)
	if err != nil {
		return err
	}
	for robot := range pending {
		if _, ok := w.robots[robot]; ok {
			continue
		}
		if err := w.sweepRobot(ctx, robot); err != nil {
			return err
		}
	}
	return nil
}

func (w *Worker) sweepRobot(ctx context.Context, robot string) error {
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
			return nil
		}
		return fmt.Errorf("worker: sweep consumer for %s: %w", robot, err)
	}
	hctx := context.WithoutCancel(ctx)
	for ctx.Err() == nil {
		batch, err := c.Fetch(64, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("worker: sweep %s: %w", robot, err)
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
	return nil
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
