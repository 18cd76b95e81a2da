package stream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultPrefix is the subject and stream prefix of a production deployment.
const DefaultPrefix = "botrelay"

// ErrInvalidPrefix is returned for a prefix that can't name subjects and streams.
var ErrInvalidPrefix = errors.New("stream: invalid prefix")

// ErrIncompatible is returned by [Topology.Ensure] for an existing stream
// whose retention or storage differs from botrelay's: the server can't
// change those in place, so an operator has to recreate the stream.
var ErrIncompatible = errors.New("stream: existing stream is incompatible")

var prefixRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,32}$`)

// Topology names the streams, subjects and consumers of one deployment.
// The zero value uses [DefaultPrefix]; tests use a unique prefix each.
type Topology struct {
	// Prefix of subjects ("<prefix>.out.<robot>") and, upper-cased, of
	// stream names ("<PREFIX>_OUT").
	Prefix string
	// Replicas of each stream; 0 means 1.
	Replicas int
	// DuplicateWindow is the publish dedup window of the outbound stream;
	// 0 means 2 minutes (the server default).
	DuplicateWindow time.Duration
	// Limits bound what the streams store; the zero value takes the
	// defaults ([DefaultLimits]).
	Limits Limits
}

// Limits bound the storage of the outbound and dead-letter streams. A zero
// field takes its default from [DefaultLimits]; a negative one means no
// limit. Both streams discard new messages at a limit: a publish over it
// is refused with an error ([IsStreamFull]), never dropped silently.
type Limits struct {
	// OutMaxBytes bounds the outbound stream's size.
	OutMaxBytes int64
	// OutMaxAge is how long a message may wait in the outbound stream;
	// the server removes older ones (give urgent messages a TTL instead).
	OutMaxAge time.Duration
	// OutMaxMsgsPerRobot bounds one robot's backlog (the stream's
	// MaxMsgsPerSubject), so that one robot cannot fill the stream.
	OutMaxMsgsPerRobot int64
	// DLQMaxBytes bounds the dead-letter stream's size.
	DLQMaxBytes int64
	// DLQMaxAge is how long dead letters are kept.
	DLQMaxAge time.Duration
	// InMaxBytes bounds the inbound (callback) stream's size.
	InMaxBytes int64
	// InMaxAge is how long inbound events are kept.
	InMaxAge time.Duration
}

// MaxConsumers is the outbound stream's consumer limit, set when the
// workers create it: one consumer per robot (and a sweep consumer per
// unconfigured one) for fleets of up to 100,000 robots.
const MaxConsumers = 200_000

// DefaultLimits returns the streams' limits where [Limits] leaves them
// zero: outbound 512 MiB, 7 days, 100,000 messages per robot (3.5 days
// of backlog at 20 a minute); dead letters 256 MiB, 30 days. A stream's
// MaxBytes is reserved on the server's storage when the stream is created
// (JetStream refuses a stream that would not fit, error 10047), so the
// defaults are modest.
func DefaultLimits() Limits {
	return Limits{
		OutMaxBytes:        512 << 20,
		OutMaxAge:          7 * 24 * time.Hour,
		OutMaxMsgsPerRobot: 100_000,
		DLQMaxBytes:        256 << 20,
		DLQMaxAge:          30 * 24 * time.Hour,
		InMaxBytes:         256 << 20,
		InMaxAge:           7 * 24 * time.Hour,
	}
}

// Resolved returns l with its zero fields set to [DefaultLimits] and its
// negative ones (no limit) as the server writes them: -1 for counts and
// sizes, 0 for ages.
func (l Limits) Resolved() Limits {
	pick := func(v, def int64) int64 {
		switch {
		case v == 0:
			return def
		case v < 0:
			return -1
		}
		return v
	}
	age := func(v, def time.Duration) time.Duration {
		switch {
		case v == 0:
			return def
		case v < 0:
			return 0
		}
		return v
	}
	d := DefaultLimits()
	return Limits{
		OutMaxBytes:        pick(l.OutMaxBytes, d.OutMaxBytes),
		OutMaxAge:          age(l.OutMaxAge, d.OutMaxAge),
		OutMaxMsgsPerRobot: pick(l.OutMaxMsgsPerRobot, d.OutMaxMsgsPerRobot),
		DLQMaxBytes:        pick(l.DLQMaxBytes, d.DLQMaxBytes),
		DLQMaxAge:          age(l.DLQMaxAge, d.DLQMaxAge),
		InMaxBytes:         pick(l.InMaxBytes, d.InMaxBytes),
		InMaxAge:           age(l.InMaxAge, d.InMaxAge),
	}
}

// IsStreamFull reports a publish refused because a stream limit (bytes,
// messages, messages per robot) was reached: JetStream error 10077 with a
// "maximum ... exceeded" description. The message was not stored; it
// may be published again once the workers have drained the backlog.
func IsStreamFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == 10077 && strings.Contains(apiErr.Description, "maximum")
}

func (t Topology) prefix() string {
	if t.Prefix == "" {
		return DefaultPrefix
	}
	return t.Prefix
}

// Validate reports whether the prefix can be used in subjects and stream names.
func (t Topology) Validate() error {
	if !prefixRE.MatchString(t.prefix()) {
		return fmt.Errorf("%w: %q must be 1-32 characters of [a-zA-Z0-9_-]", ErrInvalidPrefix, t.Prefix)
	}
	return nil
}

// OutStream is the name of the outbound work-queue stream.
func (t Topology) OutStream() string { return strings.ToUpper(t.prefix()) + "_OUT" }

// DLQStream is the name of the dead-letter stream.
func (t Topology) DLQStream() string { return strings.ToUpper(t.prefix()) + "_DLQ" }

// InStream is the name of the inbound stream: verified callbacks of the
// apps (enterprise robots), one subject per app.
func (t Topology) InStream() string { return strings.ToUpper(t.prefix()) + "_IN" }

// InSubject is the subject the callbacks of app are published on.
func (t Topology) InSubject(app string) string { return t.prefix() + ".in." + app }

// InConsumerName is the durable consumer through which app's events are
// consumed.
func (t Topology) InConsumerName(app string) string { return "app_" + app }

// InDuplicateWindow is the inbound stream's dedup window: longer than the
// hour a callback's signature is accepted, so a replayed callback (same
// msgId) is refused for as long as its signature would pass.
const InDuplicateWindow = 65 * time.Minute

// WorkSubject is the core-NATS subject on which the outbound stream
// announces (RePublish, headers only) each message stored for robot; the
// workers subscribe to [Topology.WorkSubjects] to start the robot's lane.
// An announcement is a hint, not a delivery: one lost (no subscriber, a
// disconnect) only delays the message until a worker's periodic scan of
// the stream's per-robot counts.
func (t Topology) WorkSubject(robot string) string { return t.prefix() + ".work." + robot }

// WorkSubjects is the wildcard of every robot's [Topology.WorkSubject].
func (t Topology) WorkSubjects() string { return t.prefix() + ".work.*" }

// OutSubject is the subject a message for robot is published on.
func (t Topology) OutSubject(robot string) string { return t.prefix() + ".out." + robot }

// DLQSubject is the subject a dead letter of robot is published on.
func (t Topology) DLQSubject(robot string) string { return t.prefix() + ".dlq." + robot }

// RobotFromSubject returns the robot token of an outbound or dead-letter subject.
func (t Topology) RobotFromSubject(subject string) string {
	i := strings.LastIndexByte(subject, '.')
	return subject[i+1:]
}

// ConsumerName is the durable consumer shared by all workers for robot.
func (t Topology) ConsumerName(robot string) string { return "robot_" + robot }

// SweepConsumerName is the temporary durable consumer through which workers
// dead-letter the messages of robot while no worker is configured for it.
// It holds robot's subject like [Topology.ConsumerName] does, so only one
// of the two can exist at a time on the work-queue stream.
//
// A subject token that cannot be part of a consumer name (a character
// other than letters, digits, '_' and '-', or over 64 bytes) gets a name
// made from a hash of the token, so every message, whatever its subject,
// can be swept.
func (t Topology) SweepConsumerName(robot string) string {
	if safeName(robot) {
		return "unknown_" + robot
	}
	sum := sha256.Sum256([]byte(robot))
	return "unknown_h" + hex.EncodeToString(sum[:12])
}

// safeName reports whether s is usable inside a consumer name as it is.
func safeName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// MsgID is the JetStream dedup id (Nats-Msg-Id) of envelope id published
// for robot, and the worker's ledger key of it: "<robot>/<id>". Ids are
// scoped by robot, so the same id sent to two robots is two messages,
// while the same id sent twice to one robot is stored once.
func MsgID(robot, id string) string { return robot + "/" + id }

// Ensure creates the outbound, dead-letter and inbound streams, or updates them to
// this configuration. It is safe to call from every worker at start: when
// the streams already match it changes nothing, and an update touches only
// the settings botrelay manages (subjects, discard policy, replicas,
// duplicate window, description, and the [Limits]: max bytes, max age,
// max messages per subject), keeping other limits an operator set (such as
// MaxMsgs). A stream of another retention or storage gives [ErrIncompatible].
func (t Topology) Ensure(ctx context.Context, js jetstream.JetStream) error {
	if err := t.Validate(); err != nil {
		return err
	}
	replicas := max(t.Replicas, 1)
	dup := t.DuplicateWindow
	if dup == 0 {
		dup = 2 * time.Minute
	}
	lim := t.Limits.Resolved()
	out := jetstream.StreamConfig{
		Name:        t.OutStream(),
		Description: "botrelay outbound messages, one subject per robot",
		Subjects:    []string{t.prefix() + ".out.*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		Replicas:    replicas,
		Duplicates:  dup,
		MaxBytes:    lim.OutMaxBytes,
		MaxAge:      lim.OutMaxAge,
		// Per subject is per robot; without DiscardNewPerSubject the
		// server would drop the robot's oldest message to make room.
		MaxMsgsPerSubject:    lim.OutMaxMsgsPerRobot,
		DiscardNewPerSubject: lim.OutMaxMsgsPerRobot > 0,
		MaxMsgs:              -1,
		// One consumer per robot with work: without a limit of its own the
		// stream gets the server's default of 1,000 (nats-server 2.15), and
		// the robots past it would never be served. A worker reports robots
		// it cannot serve (botrelay_unserved_robots).
		MaxConsumers: MaxConsumers,
		// Every stored message is announced, headers only, on the robot's
		// work subject: the workers' lanes start on it (see
		// [Topology.WorkSubject]).
		RePublish: &jetstream.RePublish{Source: t.prefix() + ".out.*", Destination: t.prefix() + ".work.{{wildcard(1)}}", HeadersOnly: true},
		// Direct lanes read a robot's first message through the
		// direct-get API on a single-replica stream (cheaper for the
		// server and the worker than the message-get API's JSON); on a
		// replicated one the replicas would answer it, possibly behind
		// the leader, so it is off and the leader answers.
		AllowDirect: replicas == 1,
	}
	if err := ensureStream(ctx, js, out); err != nil {
		return err
	}
	dlq := jetstream.StreamConfig{
		Name:        t.DLQStream(),
		Description: "botrelay dead letters, kept until purged",
		Subjects:    []string{t.prefix() + ".dlq.*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		Replicas:    replicas,
		Duplicates:  dup,
		MaxBytes:    lim.DLQMaxBytes,
		MaxAge:      lim.DLQMaxAge,
		MaxMsgs:     -1,
		// Per subject, no limit.
		MaxMsgsPerSubject: -1,
	}
	if err := ensureStream(ctx, js, dlq); err != nil {
		return err
	}
	in := jetstream.StreamConfig{
		Name:        t.InStream(),
		Description: "botrelay inbound events (verified callbacks), one subject per app",
		Subjects:    []string{t.prefix() + ".in.*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		Replicas:    replicas,
		Duplicates:  max(dup, InDuplicateWindow),
		MaxBytes:    lim.InMaxBytes,
		MaxAge:      lim.InMaxAge,
		MaxMsgs:     -1,
		// Per subject, no limit.
		MaxMsgsPerSubject: -1,
	}
	return ensureStream(ctx, js, in)
}

// ensureStream creates cfg's stream, or updates it only when a setting
// botrelay manages differs: every worker calls this at start, and needless
// updates racing with consumer creation are best avoided.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if _, err := js.CreateStream(ctx, cfg); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("stream: create %s: %w", cfg.Name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("stream: look up %s: %w", cfg.Name, err)
	}
	have := s.CachedInfo().Config
	// MaxConsumers: raised to ours when lower (a stream created before
	// botrelay set it has the server's default, -1, which 2.15 caps at
	// 1,000), never lowered.
	maxConsumers := have.MaxConsumers
	if cfg.MaxConsumers > 0 && (maxConsumers <= 0 || maxConsumers < cfg.MaxConsumers) {
		maxConsumers = cfg.MaxConsumers
	}
	if have.Retention != cfg.Retention || have.Storage != cfg.Storage {
		return fmt.Errorf("%w: %s has retention %s and storage %s, botrelay needs retention %s and storage %s: drain and recreate it",
			ErrIncompatible, cfg.Name, have.Retention, have.Storage, cfg.Retention, cfg.Storage)
	}
	if slices.Equal(have.Subjects, cfg.Subjects) && have.Discard == cfg.Discard && have.Replicas == cfg.Replicas && have.Duplicates == cfg.Duplicates &&
		have.Description == cfg.Description && have.MaxBytes == cfg.MaxBytes && have.MaxAge == cfg.MaxAge &&
		have.MaxMsgsPerSubject == cfg.MaxMsgsPerSubject && have.DiscardNewPerSubject == cfg.DiscardNewPerSubject &&
		have.MaxConsumers == maxConsumers && equalRePublish(have.RePublish, cfg.RePublish) && have.AllowDirect == cfg.AllowDirect {
		return nil
	}
	// Keep settings an operator added (other limits) and change only ours.
	have.Subjects, have.Discard, have.Replicas, have.Duplicates, have.Description =
		cfg.Subjects, cfg.Discard, cfg.Replicas, cfg.Duplicates, cfg.Description
	have.MaxBytes, have.MaxAge, have.MaxMsgsPerSubject, have.DiscardNewPerSubject =
		cfg.MaxBytes, cfg.MaxAge, cfg.MaxMsgsPerSubject, cfg.DiscardNewPerSubject
	oldMax, oldRePublish, oldDirect := have.MaxConsumers, have.RePublish, have.AllowDirect
	have.MaxConsumers, have.RePublish, have.AllowDirect = maxConsumers, cfg.RePublish, cfg.AllowDirect
	// nats-server before 2.10 can change neither in place (it says which):
	// keep the stream's own then. Such servers have no default consumer
	// cap; without RePublish the workers find work by their scan alone
	// (see [Topology.Announces]).
	for range 4 { // each field an older server cannot change is dropped once
		_, err = js.UpdateStream(ctx, have)
		switch {
		case err != nil && maxConsumers != oldMax && isFixed(err, "MaxConsumers"):
			have.MaxConsumers, maxConsumers = oldMax, oldMax
			continue
		case err != nil && !equalRePublish(oldRePublish, cfg.RePublish) && isFixed(err, "RePublish"):
			have.RePublish, cfg.RePublish = oldRePublish, oldRePublish
			continue
		case err != nil && oldDirect != cfg.AllowDirect && isFixed(err, "AllowDirect"):
			have.AllowDirect, cfg.AllowDirect = oldDirect, oldDirect
			continue
		}
		break
	}
	if err != nil {
		return fmt.Errorf("stream: update %s: %w", cfg.Name, err)
	}
	return nil
}

// isFixed reports the refusal of an older server (2.9) to change field of
// a stream in place ("stream configuration update can not change
// RePublish").
func isFixed(err error, field string) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && strings.Contains(apiErr.Description, "can not change "+field)
}

// Announces reports whether the outbound stream announces its messages on
// the work subjects ([Topology.WorkSubject]). It does once [Topology.Ensure]
// created or updated it, except on a stream created before botrelay asked
// for it on nats-server 2.9, which cannot add RePublish to an existing
// stream: recreate the stream (drained), or upgrade the server, for
// lanes to start at once instead of at the workers' next scan.
func (t Topology) Announces(ctx context.Context, js jetstream.JetStream) (bool, error) {
	s, err := js.Stream(ctx, t.OutStream())
	if err != nil {
		return false, fmt.Errorf("stream: %s: %w", t.OutStream(), err)
	}
	rp := s.CachedInfo().Config.RePublish
	return rp != nil && rp.Source == t.prefix()+".out.*" && rp.Destination == t.prefix()+".work.{{wildcard(1)}}", nil
}

// equalRePublish reports whether two RePublish settings are the same.
func equalRePublish(a, b *jetstream.RePublish) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// EnsureRobotConsumer is [Topology.EnsureLaneConsumer] without an
// InactiveThreshold: the consumer stays until deleted. A robot whose
// messages are folded into digests sees its backlog: its consumer is given
// maxAckPending (when set and above 1) instead of 1.
func (t Topology) EnsureRobotConsumer(ctx context.Context, js jetstream.JetStream, robot string, ackWait time.Duration, maxAckPending ...int) (jetstream.Consumer, error) {
	return t.ensureRobotConsumer(ctx, js, robot, ackWait, 0, slices.Max(append(maxAckPending, 1)))
}

// EnsureLaneConsumer creates or updates robot's durable pull consumer:
// explicit ack, MaxAckPending 1 (see the package doc), unlimited deliveries
// (the worker counts attempts itself and dead-letters explicitly). When
// botrelay's sweep consumer of robot ([Topology.SweepConsumerName]) holds
// the subject, it is deleted and the creation tried again; any other
// consumer on the subject gives an error that [IsSubjectTaken] matches.
//
// inactive, when positive, is the consumer's InactiveThreshold: the server
// deletes it once no pull has reached it for that long (a robot without
// work costs the server nothing). A recreated consumer of the work-queue
// stream starts at the robot's first unacknowledged message, so nothing is
// lost with it. Such a consumer is also kept in memory (R1 memory
// consumers are created about 8× faster than file ones: see
// docs/design/fleet.md); lost with a server restart, it is recreated by
// the lane like an expired one. An existing file consumer keeps its
// storage (the server cannot change it) until it expires.
func (t Topology) EnsureLaneConsumer(ctx context.Context, js jetstream.JetStream, robot string, ackWait, inactive time.Duration) (jetstream.Consumer, error) {
	return t.ensureRobotConsumer(ctx, js, robot, ackWait, inactive, 1)
}

// EnsureBacklogConsumer is [Topology.EnsureLaneConsumer] for a robot
// whose lane holds a backlog (a digest robot): MaxAckPending is
// maxAckPending (at least 1), and inactive, when positive, the
// InactiveThreshold, so the consumer of an idle digest robot is deleted
// like any lane's.
func (t Topology) EnsureBacklogConsumer(ctx context.Context, js jetstream.JetStream, robot string, ackWait, inactive time.Duration, maxAckPending int) (jetstream.Consumer, error) {
	return t.ensureRobotConsumer(ctx, js, robot, ackWait, inactive, max(maxAckPending, 1))
}

func (t Topology) ensureRobotConsumer(ctx context.Context, js jetstream.JetStream, robot string, ackWait, inactive time.Duration, maxAckPending int) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		InactiveThreshold: max(inactive, 0),
		MemoryStorage:     inactive > 0,
		Durable:           t.ConsumerName(robot),
		Description:       "botrelay deliveries to robot " + robot,
		FilterSubject:     t.OutSubject(robot),
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           ackWait,
		MaxAckPending:     maxAckPending,
		MaxDeliver:        -1,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		MaxWaiting:        512,
	}
	want := cfg.MemoryStorage
	c, err := createOrUpdate(ctx, js, t.OutStream(), cfg)
	if isStorageFixed(err) {
		// A file consumer made by an older worker (or the reverse): it
		// keeps its storage (the server cannot change it) and gets the
		// rest; once it expired, a lane creates it in memory.
		cfg.MemoryStorage = !want
		c, err = js.CreateOrUpdateConsumer(ctx, t.OutStream(), cfg)
		if isConsumerGone(err) {
			// It expired (InactiveThreshold) between the two calls.
			cfg.MemoryStorage = want
			c, err = js.CreateOrUpdateConsumer(ctx, t.OutStream(), cfg)
		}
	}
	if IsSubjectTaken(err) {
		// A sweep consumer holds the subject: left behind by a worker
		// killed mid-sweep, or sweeping the robot right before it was
		// configured. The robot is configured now: its consumer wins.
		derr := js.DeleteConsumer(ctx, t.OutStream(), t.SweepConsumerName(robot))
		if derr == nil {
			c, err = js.CreateOrUpdateConsumer(ctx, t.OutStream(), cfg)
		} else if !errors.Is(derr, jetstream.ErrConsumerNotFound) {
			err = fmt.Errorf("%w (removing sweep consumer %s: %w)", err, t.SweepConsumerName(robot), derr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream: ensure consumer for robot %s: %w", robot, err)
	}
	return c, nil
}

// isStorageFixed reports the server's refusal to change a consumer's
// storage type (JetStream error 10012).
// createOrUpdate is js.CreateOrUpdateConsumer, once more when the server
// answers that the consumer does not exist (JetStream error 10149): it
// found the consumer and then lost it, deleted meanwhile by its
// InactiveThreshold (TestLaneConsumerExpiresWhenIdle failed so in CI).
func createOrUpdate(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if isConsumerGone(err) {
		c, err = js.CreateOrUpdateConsumer(ctx, stream, cfg)
	}
	return c, err
}

// isConsumerGone reports JetStream's "consumer does not exist" (10149).
func isConsumerGone(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == 10149
}

func isStorageFixed(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && strings.Contains(apiErr.Description, "storage type can not be updated")
}

// IsSubjectTaken reports the work-queue stream's refusal of a second
// consumer on a subject (JetStream error 10100, "filtered consumer not
// unique").
func IsSubjectTaken(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == 10100
}

// PendingRobots returns the robot tokens that have messages waiting in the
// outbound stream, with their counts.
func (t Topology) PendingRobots(ctx context.Context, js jetstream.JetStream) (map[string]uint64, error) {
	s, err := js.Stream(ctx, t.OutStream())
	if err != nil {
		return nil, fmt.Errorf("stream: %s: %w", t.OutStream(), err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(t.prefix()+".out.*"))
	if err != nil {
		return nil, fmt.Errorf("stream: info %s: %w", t.OutStream(), err)
	}
	out := make(map[string]uint64, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		out[t.RobotFromSubject(subj)] = n
	}
	return out, nil
}
