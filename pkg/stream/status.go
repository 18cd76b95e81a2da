package stream

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// RobotQueue is what JetStream knows about one robot's deliveries, for
// people asking why a robot is not delivering. See [Topology.RobotStatus].
type RobotQueue struct {
	// Backlog is the number of the robot's messages in the outbound stream,
	// including the one a worker may be delivering (a work-queue stream
	// keeps a message until it is acknowledged).
	Backlog uint64 `json:"backlog"`
	// Consumer is true when the robot's durable consumer exists: some
	// worker has (or had) the robot in its configuration.
	Consumer bool `json:"consumer"`
	// Pending is the number of messages handed to a worker and not yet
	// acknowledged (at most 1: see the package doc), including a message
	// waiting for a delayed redelivery.
	Pending int `json:"pending"`
	// Redelivered is the number of pending messages handed out more than
	// once.
	Redelivered int `json:"redelivered"`
	// Waiting is the number of pull requests waiting on the consumer: each
	// live worker serving the robot keeps one open while it is idle.
	Waiting int `json:"waiting"`
	// LastActive is when the consumer last handed out a message; zero when
	// it never did.
	LastActive time.Time `json:"last_active,omitzero"`
	// DeadLetters is the number of the robot's records in the dead-letter
	// stream.
	DeadLetters uint64 `json:"dead_letters"`
}

// RobotStatus returns the queue state of every robot that has messages in
// the outbound stream, a robot consumer, or dead letters, keyed by robot.
// It reads three things and changes nothing: the outbound stream's
// per-subject counts, the dead-letter stream's per-subject counts, and the
// outbound stream's consumers. Both streams must exist (see
// [Topology.Ensure]); errors wrap the server's, e.g.
// [jetstream.ErrStreamNotFound].
func (t Topology) RobotStatus(ctx context.Context, js jetstream.JetStream) (map[string]RobotQueue, error) {
	backlog, err := t.PendingRobots(ctx, js)
	if err != nil {
		return nil, err
	}
	dead, err := t.subjectCounts(ctx, js, t.DLQStream(), t.prefix()+".dlq.*")
	if err != nil {
		return nil, err
	}
	out := make(map[string]RobotQueue, len(backlog))
	for robot, n := range backlog {
		q := out[robot]
		q.Backlog = n
		out[robot] = q
	}
	for robot, n := range dead {
		q := out[robot]
		q.DeadLetters = n
		out[robot] = q
	}

	s, err := js.Stream(ctx, t.OutStream())
	if err != nil {
		return nil, fmt.Errorf("stream: %s: %w", t.OutStream(), err)
	}
	list := s.ListConsumers(ctx)
	for info := range list.Info() {
		robot, ok := t.robotFromConsumer(info.Name)
		if !ok {
			continue // e.g. a worker's temporary sweep consumer
		}
		q := out[robot]
		q.Consumer = true
		q.Pending = info.NumAckPending
		q.Redelivered = info.NumRedelivered
		q.Waiting = info.NumWaiting
		if info.Delivered.Last != nil {
			q.LastActive = *info.Delivered.Last
		}
		out[robot] = q
	}
	if err := list.Err(); err != nil {
		return nil, fmt.Errorf("stream: list consumers of %s: %w", t.OutStream(), err)
	}
	return out, nil
}

// robotFromConsumer is the inverse of [Topology.ConsumerName].
func (t Topology) robotFromConsumer(name string) (string, bool) {
	robot, ok := strings.CutPrefix(name, t.ConsumerName(""))
	return robot, ok && robot != ""
}

// subjectCounts returns the number of messages per robot on the subjects
// of stream matching filter.
func (t Topology) subjectCounts(ctx context.Context, js jetstream.JetStream, stream, filter string) (map[string]uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream: %s: %w", stream, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("stream: info %s: %w", stream, err)
	}
	out := make(map[string]uint64, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		out[t.RobotFromSubject(subj)] = n
	}
	return out, nil
}

// Usage is what a stream holds and may hold, for "producer status".
type Usage struct {
	Stream   string `json:"stream"`
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	// MaxBytes, MaxAge and MaxMsgsPerSubject are the stream's limits: -1
	// (0 for MaxAge) when there is none.
	MaxBytes          int64         `json:"max_bytes"`
	MaxAge            time.Duration `json:"max_age_ns"`
	MaxMsgsPerSubject int64         `json:"max_msgs_per_subject"`
}

// FullPercent is how full the stream is against MaxBytes, 0 without a
// limit.
func (u Usage) FullPercent() int {
	if u.MaxBytes <= 0 {
		return 0
	}
	return int(u.Bytes * 100 / uint64(u.MaxBytes))
}

// StreamUsage returns the usage and limits of the outbound and dead-letter
// streams, in that order.
func (t Topology) StreamUsage(ctx context.Context, js jetstream.JetStream) ([]Usage, error) {
	var out []Usage
	for _, name := range []string{t.OutStream(), t.DLQStream()} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("stream: %s: %w", name, err)
		}
		info := s.CachedInfo()
		out = append(out, Usage{Stream: name, Messages: info.State.Msgs, Bytes: info.State.Bytes,
			MaxBytes: info.Config.MaxBytes, MaxAge: info.Config.MaxAge, MaxMsgsPerSubject: info.Config.MaxMsgsPerSubject})
	}
	return out, nil
}
