package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/stream"
)

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 5 * time.Second

// ErrDuplicate is returned by [Publish] for an event the stream already
// holds (a replayed or repeated callback, same msgId, within
// [stream.InDuplicateWindow]).
var ErrDuplicate = errors.New("inbound: duplicate event")

// MsgID is the dedup id (Nats-Msg-Id) of an event: "<app>/<msgId>".
func MsgID(e *Event) string { return e.App + "/" + e.MsgID }

// Publish stores e on its app's subject of topo's inbound stream, with its
// id as Nats-Msg-Id, waiting for the stream's acknowledgement. It returns
// the stream sequence and sets e.ID from it; an event already stored
// gives [ErrDuplicate] (with the sequence, and e.ID, of the first copy). A ctx without a deadline gets
// [DefaultTimeout].
func Publish(ctx context.Context, js jetstream.JetStream, topo stream.Topology, e *Event) (uint64, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return 0, fmt.Errorf("inbound: encode event %s: %w", MsgID(e), err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	msg := nats.NewMsg(topo.InSubject(e.App))
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, MsgID(e))
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, fmt.Errorf("inbound: publish event %s to %s: %w", MsgID(e), topo.InStream(), err)
	}
	e.ID = EventID(e.App, ack.Sequence)
	if ack.Duplicate {
		return ack.Sequence, fmt.Errorf("%w: %s", ErrDuplicate, MsgID(e))
	}
	return ack.Sequence, nil
}

// Msg is one event handed to a [Handler], with its acknowledgement.
type Msg struct {
	// Event is the decoded event.
	Event *Event
	// Sequence is the event's position in the inbound stream.
	Sequence uint64
	// NumDelivered counts the deliveries of the event, this one included.
	NumDelivered uint64
	msg          jetstream.Msg
}

// Handler acts on one event. Returning nil acks the event; an error NAKs
// it (it comes back after a second), unless it wraps [ErrTerm], which
// takes the event out for good.
type Handler func(ctx context.Context, m *Msg) error

// ErrTerm, wrapped by a [Handler]'s error, terminates the event instead
// of redelivering it.
var ErrTerm = errors.New("inbound: do not redeliver")

// SubscribeOptions tune [Subscribe]; the zero value takes the defaults.
type SubscribeOptions struct {
	// AckWait is how long an event handed to a handler that died waits
	// before it is handed out again; default 30s.
	AckWait time.Duration
	// DeliverNew, when the consumer is created, starts it at events
	// published after now instead of the first one kept.
	DeliverNew bool
	// NakDelay is the redelivery delay of an event whose handler failed;
	// default 1s.
	NakDelay time.Duration
}

// EnsureConsumer creates or updates app's durable consumer on topo's
// inbound stream ([stream.Topology.InConsumerName]): explicit acks, every
// event kept until a handler acks it.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, topo stream.Topology, app string, o SubscribeOptions) (jetstream.Consumer, error) {
	if o.AckWait == 0 {
		o.AckWait = 30 * time.Second
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       topo.InConsumerName(app),
		Description:   "botrelay inbound events of app " + app,
		FilterSubject: topo.InSubject(app),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if o.DeliverNew {
		if c, err := js.Consumer(ctx, topo.InStream(), cfg.Durable); err == nil {
			return c, nil // an existing consumer keeps its position
		}
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	c, err := js.CreateOrUpdateConsumer(ctx, topo.InStream(), cfg)
	if err != nil {
		return nil, fmt.Errorf("inbound: consumer for app %s: %w", app, err)
	}
	return c, nil
}

// Subscribe hands app's events to h, one at a time in stream order,
// through app's durable consumer (created when missing, see
// [EnsureConsumer]), until ctx is done; it then returns ctx's error. Every
// subscriber of one app shares the consumer: each event goes to one of
// them. An event that cannot be decoded is terminated (skipped).
func Subscribe(ctx context.Context, js jetstream.JetStream, topo stream.Topology, app string, h Handler, opts ...SubscribeOptions) error {
	var o SubscribeOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.NakDelay == 0 {
		o.NakDelay = time.Second
	}
	c, err := EnsureConsumer(ctx, js, topo, app, o)
	if err != nil {
		return err
	}
	for {
		batch, err := c.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if sleepCtx(ctx, 200*time.Millisecond) != nil {
				return ctx.Err()
			}
			continue
		}
		for msg := range batch.Messages() {
			handleOne(ctx, msg, h, o)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func handleOne(ctx context.Context, msg jetstream.Msg, h Handler, o SubscribeOptions) {
	var e Event
	if err := json.Unmarshal(msg.Data(), &e); err != nil {
		_ = msg.Term()
		return
	}
	m := &Msg{Event: &e, msg: msg}
	if md, err := msg.Metadata(); err == nil {
		m.Sequence, m.NumDelivered = md.Sequence.Stream, md.NumDelivered
		e.ID = EventID(e.App, md.Sequence.Stream)
	}
	err := h(ctx, m)
	switch {
	case err == nil:
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultTimeout)
		_ = msg.DoubleAck(actx)
		cancel()
	case errors.Is(err, ErrTerm):
		_ = msg.Term()
	default:
		_ = msg.NakWithDelay(o.NakDelay)
	}
}

// Decode reads a stored event at seq of the inbound stream.
func Decode(data []byte, seq uint64) (*Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%w: stored event %d: %w", ErrInvalid, seq, err)
	}
	e.ID = EventID(e.App, seq)
	return &e, nil
}

// ErrNotFound is returned by [Get] for an event id the inbound stream
// does not hold (never stored, or removed by age).
var ErrNotFound = errors.New("inbound: no such event")

// Get returns the event of topo's inbound stream with id ([EventID]). It
// fails with [ErrNotFound] when the stream does not hold it, and
// [ErrInvalid] for a malformed id.
func Get(ctx context.Context, js jetstream.JetStream, topo stream.Topology, id string) (*Event, error) {
	app, seq, err := ParseEventID(id)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	s, err := js.Stream(ctx, topo.InStream())
	if err != nil {
		return nil, fmt.Errorf("inbound: event %s: %w", id, err)
	}
	m, err := s.GetMsg(ctx, seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	case err != nil:
		return nil, fmt.Errorf("inbound: event %s: %w", id, err)
	case m.Subject != topo.InSubject(app):
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return Decode(m.Data, seq)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
