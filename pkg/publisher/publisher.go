// Package publisher is the Go API services use to hand messages to botrelay:
// it validates an envelope, publishes it to its robot's subject with the
// envelope id as the JetStream dedup id, and waits for the stream's
// acknowledgement, so a message is either stored durably or the caller gets
// an error.
package publisher

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/stream"
)

// Publisher publishes envelopes. It is safe for concurrent use.
type Publisher struct {
	js   jetstream.JetStream
	topo stream.Topology
}

// New returns a publisher on js for the deployment topo (the zero Topology
// is production's).
func New(js jetstream.JetStream, topo stream.Topology) (*Publisher, error) {
	if err := topo.Validate(); err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	return &Publisher{js: js, topo: topo}, nil
}

// Ack is the stream's acknowledgement of one publish.
type Ack struct {
	// Sequence is the message's position in the outbound stream.
	Sequence uint64
	// Duplicate is true when the stream already held this envelope id
	// (within its duplicate window) and stored nothing new.
	Duplicate bool
}

// Publish validates env and publishes it, waiting for the acknowledgement.
func (p *Publisher) Publish(ctx context.Context, env *envelope.Envelope) (Ack, error) {
	data, err := envelope.Encode(env)
	if err != nil {
		return Ack{}, fmt.Errorf("publisher: %w", err)
	}
	pa, err := p.js.Publish(ctx, p.topo.OutSubject(env.Robot), data, jetstream.WithMsgID(env.ID))
	if err != nil {
		return Ack{}, fmt.Errorf("publisher: publish %s to robot %s: %w", env.ID, env.Robot, err)
	}
	return Ack{Sequence: pa.Sequence, Duplicate: pa.Duplicate}, nil
}

// PublishAll publishes many envelopes with asynchronous publishes, then waits
// for every acknowledgement. It returns one error per envelope (nil where it
// was stored), and a joined error when any failed. Invalid envelopes are
// reported and not published; the others still are.
func (p *Publisher) PublishAll(ctx context.Context, envs []*envelope.Envelope) ([]error, error) {
	errs := make([]error, len(envs))
	futures := make([]jetstream.PubAckFuture, len(envs))
	for i, env := range envs {
		data, err := envelope.Encode(env)
		if err != nil {
			errs[i] = fmt.Errorf("publisher: envelope %d: %w", i, err)
			continue
		}
		f, err := p.js.PublishAsync(p.topo.OutSubject(env.Robot), data, jetstream.WithMsgID(env.ID))
		if err != nil {
			errs[i] = fmt.Errorf("publisher: envelope %d (%s): %w", i, env.ID, err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs[i] = fmt.Errorf("publisher: envelope %d (%s): %w", i, envs[i].ID, err)
		case <-ctx.Done():
			errs[i] = fmt.Errorf("publisher: envelope %d (%s): %w", i, envs[i].ID, ctx.Err())
		}
	}
	return errs, errors.Join(errs...)
}

// FanOut publishes a copy of env to each robot (ids "<id>.<robot>"), so one
// notification reaches many groups, each copy rate-limited and retried on
// its own.
func (p *Publisher) FanOut(ctx context.Context, env *envelope.Envelope, robots []string) ([]error, error) {
	envs := make([]*envelope.Envelope, len(robots))
	for i, r := range robots {
		envs[i] = env.ForRobot(r, 0)
	}
	return p.PublishAll(ctx, envs)
}
