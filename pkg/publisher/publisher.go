package publisher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/inbound"
	"github.com/botrelay/botrelay/pkg/stream"
)

// DefaultTimeout bounds a call whose context has no deadline, as nats.go
// does for its own API calls.
const DefaultTimeout = 5 * time.Second

// ErrInvalidOption is returned by [New] for an option with a bad value.
var ErrInvalidOption = errors.New("publisher: invalid option")

// ErrNoStream is returned (wrapping [jetstream.ErrNoStreamResponse]) when
// no stream answered a publish: the outbound stream does not exist, or it
// does not listen on the robot's subject (a wrong topology prefix).
var ErrNoStream = errors.New("publisher: no stream stored the message")

// ErrStreamFull is returned (wrapping the server's error) when a limit of
// the outbound stream refused the message: its size, or the robot's
// backlog cap (see [stream.Limits]). Nothing was stored; publish again
// once the workers have drained the backlog.
var ErrStreamFull = errors.New("publisher: stream full")

// ErrGroup is returned for an envelope addressed to a group (see
// [WithGroups]) by a call that publishes one envelope per target
// ([Publisher.Publish], [Publisher.PublishAll], [Publisher.PublishSplit]):
// a group has no subject of its own; [Publisher.Send] and
// [Publisher.FanOut] expand it.
var ErrGroup = errors.New("publisher: a group: publish it with Send or FanOut")

// Publisher publishes envelopes. It is safe for concurrent use.
type Publisher struct {
	js      jetstream.JetStream
	topo    stream.Topology
	timeout time.Duration
	size    func(robot string) envelope.Limits
	groups  func(name string) ([]string, bool)
}

// Option configures a [Publisher].
type Option func(*options) error

type options struct {
	timeout time.Duration
	size    func(robot string) envelope.Limits
	groups  func(name string) ([]string, bool)
}

// WithGroups makes the publisher expand named groups: members returns the
// members (robots or pools) of the group name, and false when name is not
// a group (config.Config.GroupMembers gives them from robots.yaml).
// [Publisher.Send] and [Publisher.FanOut] then publish one copy per
// member, with ids "<id>.<member>", as a fan-out does; the calls that
// publish one envelope per target refuse a group with [ErrGroup]. Robots
// and pools are published to as they are.
func WithGroups(members func(name string) ([]string, bool)) Option {
	return func(o *options) error {
		if members == nil {
			return fmt.Errorf("%w: nil group members", ErrInvalidOption)
		}
		o.groups = members
		return nil
	}
}

// WithSizeRules makes the publisher check (and [Publisher.PublishSplit]
// split) each envelope under the size rules of its robot's platform, as
// size returns them (config.Config.TargetSize gives them from robots.yaml,
// a pool's being its robots'; config.Config.Size those of one robot;
// delivery.LookupPlatform(name).Size for a known platform): a message that
// fits DingTalk but not WeCom's 2,048 bytes of text is refused, or split,
// for a WeCom robot, here, instead of being dead-lettered by the worker.
// Without it every robot gets the default (DingTalk's) rules.
func WithSizeRules(size func(robot string) envelope.Limits) Option {
	return func(o *options) error {
		if size == nil {
			return fmt.Errorf("%w: nil size rules", ErrInvalidOption)
		}
		o.size = size
		return nil
	}
}

// WithDefaultTimeout sets how long a call whose context has no deadline
// may take (default [DefaultTimeout]). It must be positive.
func WithDefaultTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: default timeout must be positive, not %s", ErrInvalidOption, d)
		}
		o.timeout = d
		return nil
	}
}

// New returns a publisher on js for the deployment topo (the zero Topology
// is production's). Options: [WithDefaultTimeout], [WithSizeRules],
// [WithGroups].
func New(js jetstream.JetStream, topo stream.Topology, opts ...Option) (*Publisher, error) {
	if err := topo.Validate(); err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	o := options{timeout: DefaultTimeout}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return &Publisher{js: js, topo: topo, timeout: o.timeout, size: o.size, groups: o.groups}, nil
}

// Ack is the stream's acknowledgement of one publish.
type Ack struct {
	// Sequence is the message's position in the outbound stream. For a
	// duplicate it is the sequence of the copy stored first.
	Sequence uint64
	// Duplicate is true when the stream already held this envelope id
	// (within its duplicate window) and stored nothing new.
	Duplicate bool
}

// Result is the outcome of one envelope of [Publisher.PublishAll],
// [Publisher.FanOut] or [Publisher.PublishSplit].
type Result struct {
	// ID and Robot name the envelope published (for a fan-out, the
	// robot's copy with its derived id).
	ID    string
	Robot string
	// Ack is the stream's acknowledgement; zero when Err is set.
	Ack Ack
	// Err is nil when the stream stored the envelope (or already held it:
	// see [Ack.Duplicate]). An invalid envelope's error matches
	// [envelope.ErrInvalid]; a missing stream's matches [ErrNoStream].
	Err error
}

// withDefaultTimeout returns ctx bounded by the publisher's default timeout
// when it has no deadline of its own.
func (p *Publisher) withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, p.timeout)
}

// encode validates env and returns its encoding, or an error naming it.
func (p *Publisher) encode(env *envelope.Envelope) ([]byte, error) {
	if env == nil {
		return nil, fmt.Errorf("publisher: %w: nil envelope", envelope.ErrInvalid)
	}
	if p.IsGroup(env.Robot) {
		return nil, fmt.Errorf("publisher: envelope %q for %q: %w", env.ID, env.Robot, ErrGroup)
	}
	data, err := envelope.Encode(env)
	if err == nil && p.size != nil {
		err = env.ValidateFor(p.size(env.Robot))
	}
	if err != nil {
		return nil, fmt.Errorf("publisher: envelope %q for robot %q: %w", env.ID, env.Robot, err)
	}
	return data, nil
}

// limits are the size rules of robot (the default without [WithSizeRules]).
func (p *Publisher) limits(robot string) envelope.Limits {
	if p.size == nil {
		return envelope.Limits{}
	}
	return p.size(robot)
}

// publishError wraps the failure of a publish of env, telling plainly when
// no stream listens on the subject.
func (p *Publisher) publishError(env *envelope.Envelope, err error) error {
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		return fmt.Errorf("%w: publish %s to robot %s: stream %s does not exist or does not listen on %s: %w",
			ErrNoStream, env.ID, env.Robot, p.topo.OutStream(), p.topo.OutSubject(env.Robot), err)
	}
	if stream.IsStreamFull(err) {
		return fmt.Errorf("%w: publish %s to robot %s: %s refused it at a limit (the workers are behind or stopped; retry later): %w",
			ErrStreamFull, env.ID, env.Robot, p.topo.OutStream(), err)
	}
	return fmt.Errorf("publisher: publish %s to robot %s: %w", env.ID, env.Robot, err)
}

// Publish validates env and publishes it to its robot's subject with the
// robot-scoped envelope id ([stream.MsgID], "<robot>/<id>") as the dedup id
// (Nats-Msg-Id), waiting for the stream's
// acknowledgement. A ctx without a deadline gets the default timeout.
func (p *Publisher) Publish(ctx context.Context, env *envelope.Envelope) (Ack, error) {
	data, err := p.encode(env)
	if err != nil {
		return Ack{}, err
	}
	ctx, cancel := p.withDefaultTimeout(ctx)
	defer cancel()
	pa, err := p.js.Publish(ctx, p.topo.OutSubject(env.Robot), data, jetstream.WithMsgID(stream.MsgID(env.Robot, env.ID)))
	if err != nil {
		return Ack{}, p.publishError(env, err)
	}
	return Ack{Sequence: pa.Sequence, Duplicate: pa.Duplicate}, nil
}

// PublishAll publishes many envelopes with asynchronous publishes, then
// waits for every acknowledgement. It returns one [Result] per envelope, in
// the order given, and the join of the failed ones' errors (each naming
// its index), nil when all were stored. Invalid envelopes are reported and
// not published; the others still are. A ctx without a deadline gets the
// default timeout for the whole batch.
func (p *Publisher) PublishAll(ctx context.Context, envs []*envelope.Envelope) ([]Result, error) {
	ctx, cancel := p.withDefaultTimeout(ctx)
	defer cancel()
	results := make([]Result, len(envs))
	futures := make([]jetstream.PubAckFuture, len(envs))
	for i, env := range envs {
		if env != nil {
			results[i].ID, results[i].Robot = env.ID, env.Robot
		}
		data, err := p.encode(env)
		if err != nil {
			results[i].Err = err
			continue
		}
		if err := ctx.Err(); err != nil {
			results[i].Err = p.publishError(env, err)
			continue
		}
		f, err := p.js.PublishAsync(p.topo.OutSubject(env.Robot), data, jetstream.WithMsgID(stream.MsgID(env.Robot, env.ID)))
		if err != nil {
			results[i].Err = p.publishError(env, err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case pa := <-f.Ok():
			results[i].Ack = Ack{Sequence: pa.Sequence, Duplicate: pa.Duplicate}
		case err := <-f.Err():
			results[i].Err = p.publishError(envs[i], err)
		case <-ctx.Done():
			results[i].Err = p.publishError(envs[i], fmt.Errorf("waiting for the acknowledgement: %w", ctx.Err()))
		}
	}
	return results, joinErrors(results)
}

// joinErrors joins the results' errors, each prefixed with its index.
func joinErrors(results []Result) error {
	var errs []error
	for i, r := range results {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("envelope %d: %w", i, r.Err))
		}
	}
	return errors.Join(errs...)
}

// FanOut publishes a copy of env to each robot, with ids "<id>.<robot>"
// (see [envelope.Envelope.ForRobot]), so one notification reaches many
// groups, each copy rate-limited and retried on its own. Because the ids
// are deterministic, repeating a fan-out stores nothing new (each result's
// [Ack.Duplicate] is set). It returns one [Result] per robot, in the order
// given, like [Publisher.PublishAll], a robot named more than once counted
// at its first place only. With [WithGroups], a group among robots stands
// for its members, in their order (see [Publisher.Targets]).
func (p *Publisher) FanOut(ctx context.Context, env *envelope.Envelope, robots []string) ([]Result, error) {
	if env == nil {
		return nil, fmt.Errorf("publisher: fan-out: %w: nil envelope", envelope.ErrInvalid)
	}
	robots = p.Targets(robots...)
	envs := make([]*envelope.Envelope, len(robots))
	for i, r := range robots {
		envs[i] = env.ForRobot(r, 0)
	}
	return p.PublishAll(ctx, envs)
}

// IsGroup reports whether name is a group (see [WithGroups]).
func (p *Publisher) IsGroup(name string) bool {
	if p.groups == nil {
		return false
	}
	_, ok := p.groups(name)
	return ok
}

// Targets returns names with each group (see [WithGroups]) replaced by its
// members, in order, and every name after its first occurrence dropped: a
// robot named directly and through a group gets one copy.
func (p *Publisher) Targets(names ...string) []string {
	out := make([]string, 0, len(names))
	add := func(n string) {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, n := range names {
		members, ok := []string(nil), false
		if p.groups != nil {
			members, ok = p.groups(n)
		}
		if !ok {
			add(n)
			continue
		}
		for _, m := range members {
			add(m)
		}
	}
	return out
}

// Send publishes env to its target: for a robot or a pool, env itself, as
// [Publisher.Publish] does (one [Result]); for a group (see [WithGroups]),
// one copy per member with ids "<id>.<member>", as [Publisher.FanOut]
// does. It returns the results and the join of their errors, like
// [Publisher.PublishAll].
func (p *Publisher) Send(ctx context.Context, env *envelope.Envelope) ([]Result, error) {
	if env == nil {
		return nil, fmt.Errorf("publisher: %w: nil envelope", envelope.ErrInvalid)
	}
	if p.IsGroup(env.Robot) {
		return p.FanOut(ctx, env, []string{env.Robot})
	}
	ack, err := p.Publish(ctx, env)
	res := []Result{{ID: env.ID, Robot: env.Robot, Ack: ack, Err: err}}
	return res, joinErrors(res)
}

// PublishSplit publishes env, split first with [envelope.SplitFor] when it
// is over its robot's size rules ([WithSizeRules]; by default
// [envelope.MaxContentBytes]): a text or markdown message too long for
// one post becomes parts "<id>.p1", "<id>.p2", … each marked "(i/n)", with
// the mentions on the last part (see [envelope.Split] for the rules, and
// for security keywords, which must appear in every part). An envelope
// that fits is published as is, with its own id, as [Publisher.Publish]
// does.
//
// The parts are published one at a time, in order, each after the
// previous one's acknowledgement, so they are stored in order on the
// robot's subject and the worker posts them in order. The first failure
// stops the publishing: it returns one [Result] per part (the parts after
// the failed one with an error saying they were not published) and the
// failed part's error. The part ids are deterministic, so calling
// PublishSplit again with the same envelope stores only the parts still
// missing (the others come back with [Ack.Duplicate]) and keeps the
// order. An envelope that cannot be split (another kind, or invalid) gives
// no results and an error matching [envelope.ErrInvalid] ([envelope.ErrTooLarge]
// for a message too large to split). A ctx without a deadline gets the
// default timeout for all the parts.
func (p *Publisher) PublishSplit(ctx context.Context, env *envelope.Envelope) ([]Result, error) {
	if env == nil {
		return nil, fmt.Errorf("publisher: split: %w: nil envelope", envelope.ErrInvalid)
	}
	if p.IsGroup(env.Robot) {
		return nil, fmt.Errorf("publisher: split envelope %q for %q: %w", env.ID, env.Robot, ErrGroup)
	}
	parts, err := envelope.SplitFor(env, p.limits(env.Robot))
	if err != nil {
		return nil, fmt.Errorf("publisher: split envelope %q for robot %q: %w", env.ID, env.Robot, err)
	}
	ctx, cancel := p.withDefaultTimeout(ctx)
	defer cancel()
	results := make([]Result, len(parts))
	var failed error
	for i, part := range parts {
		results[i].ID, results[i].Robot = part.ID, part.Robot
		if failed != nil {
			results[i].Err = fmt.Errorf("publisher: part %d of %d (%s) not published: an earlier part failed",
				i+1, len(parts), part.ID)
			continue
		}
		ack, err := p.Publish(ctx, part)
		if err != nil {
			results[i].Err = err
			failed = fmt.Errorf("part %d of %d: %w", i+1, len(parts), err)
			continue
		}
		results[i].Ack = ack
	}
	return results, failed
}

// Reply publishes env as a reply to the inbound event eventID (see
// pkg/inbound): env.Robot becomes the event's app, taken from the id
// ("<app>.<sequence>"), and env.ReplyTo the id. The workers post it to the
// event's session webhook until the session expires (then dead-letter it
// as expired), limited per conversation. Mention the sender with
// env.At.UserIDs (and "@id" in the content). The event is not looked up
// here: a reply to an event that is not stored is dead-lettered (no_event).
func (p *Publisher) Reply(ctx context.Context, eventID string, env *envelope.Envelope) (Ack, error) {
	app, _, err := inbound.ParseEventID(eventID)
	if err != nil {
		return Ack{}, fmt.Errorf("publisher: reply: %w", err)
	}
	if env == nil {
		return Ack{}, fmt.Errorf("publisher: %w: nil envelope", envelope.ErrInvalid)
	}
	env.Robot, env.ReplyTo = app, eventID
	return p.Publish(ctx, env)
}
