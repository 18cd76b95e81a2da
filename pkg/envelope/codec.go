package envelope

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Errors returned by [Decode]; match them with [errors.Is].
var (
	// ErrDecode matches every error of [Decode] that is not a validation
	// error: malformed JSON, unknown fields, trailing data, future versions.
	ErrDecode = errors.New("envelope: decode")
	// ErrUnsupportedVersion matches (together with [ErrDecode]) the error for
	// an envelope whose schema version is newer than [Version]: a newer
	// producer wrote it, and a newer consumer may still read it.
	ErrUnsupportedVersion = errors.New("envelope: unsupported schema version")
)

// Decode parses one JSON envelope strictly and validates it.
//
// Malformed JSON, unknown fields, data after the envelope and a version
// newer than [Version] give an error matching [ErrDecode] (the version error
// also matches [ErrUnsupportedVersion]); otherwise an envelope that fails
// [Envelope.Validate] gives that error, matching [ErrInvalid]. A version of 0
// is returned as [Version].
func Decode(data []byte) (*Envelope, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var e Envelope
	if err := dec.Decode(&e); err != nil {
		// A newer producer's envelope probably has fields this build does
		// not know, and "unknown field" would hide the cause: say so.
		if err := newerVersion(data); err != nil {
			return nil, err
		}
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty input", ErrDecode)
		}
		return nil, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	if e.V > Version {
		return nil, versionError(e.V)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data after the envelope at offset %d", ErrDecode, dec.InputOffset())
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	if e.V == 0 {
		e.V = Version
	}
	return &e, nil
}

// newerVersion returns the error for data whose "v" is newer than
// [Version], nil otherwise. It is read only when the envelope does not
// decode: on the hot path the envelope is scanned once.
func newerVersion(data []byte) error {
	var head struct {
		V json.RawMessage `json:"v"`
	}
	if json.Unmarshal(data, &head) == nil && len(head.V) > 0 {
		if v, err := strconv.Atoi(string(head.V)); err == nil && v > Version {
			return versionError(v)
		}
	}
	return nil
}

func versionError(v int) error {
	return fmt.Errorf("%w: %w: version %d is newer than %d, the newest this build reads; upgrade the consumer",
		ErrDecode, ErrUnsupportedVersion, v, Version)
}

// Encode validates e and returns its JSON encoding, with v set to [Version]
// when e.V is 0. e is not modified.
func Encode(e *Envelope) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	out := *e
	if out.V == 0 {
		out.V = Version
	}
	b, err := json.Marshal(&out)
	if err != nil {
		return nil, fmt.Errorf("envelope: encode: %w", err)
	}
	return b, nil
}

// NewID returns a fresh random message ID: 26 lowercase base32 characters
// (128 bits from crypto/rand).
func NewID() string {
	return strings.ToLower(rand.Text())
}

// Option configures [New].
type Option func(*options)

type options struct {
	id        string
	at        *At
	labels    map[string]string
	expiresAt *time.Time
	ttl       time.Duration
	clock     func() time.Time
}

// WithID sets the ID instead of a fresh [NewID]; use it when the producer
// has a natural key, so that republishing is deduplicated.
func WithID(id string) Option { return func(o *options) { o.id = id } }

// WithAt sets the mentions (copied).
func WithAt(at At) Option {
	return func(o *options) {
		o.at = &At{Mobiles: slices.Clone(at.Mobiles), UserIDs: slices.Clone(at.UserIDs), All: at.All}
	}
}

// WithLabels adds labels (copied; several WithLabels merge, later wins).
func WithLabels(labels map[string]string) Option {
	return func(o *options) {
		if o.labels == nil {
			o.labels = make(map[string]string, len(labels))
		}
		maps.Copy(o.labels, labels)
	}
}

// WithExpiresAt sets the moment after which the message must not be posted.
// It replaces an earlier [WithTTL].
func WithExpiresAt(t time.Time) Option {
	return func(o *options) {
		u := t.UTC()
		o.expiresAt, o.ttl = &u, 0
	}
}

// WithTTL makes the message expire d after its creation time; d <= 0 means
// no expiry. It replaces an earlier [WithExpiresAt].
func WithTTL(d time.Duration) Option {
	return func(o *options) { o.ttl, o.expiresAt = d, nil }
}

// WithClock sets the clock that gives the creation time (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.clock = now }
}

// New returns an envelope for robot with V = [Version], a fresh [NewID] and
// CreatedAt = now in UTC. Options: [WithID], [WithAt], [WithLabels],
// [WithExpiresAt], [WithTTL], [WithClock]. New does not validate: call
// [Envelope.Validate] or [Encode].
func New(robot string, msg Message, opts ...Option) *Envelope {
	o := options{clock: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.id == "" {
		o.id = NewID()
	}
	now := o.clock().UTC()
	e := &Envelope{
		V:         Version,
		ID:        o.id,
		Robot:     robot,
		Message:   msg.clone(),
		At:        o.at,
		CreatedAt: now,
		ExpiresAt: o.expiresAt,
		Labels:    o.labels,
	}
	if o.ttl > 0 {
		exp := now.Add(o.ttl)
		e.ExpiresAt = &exp
	}
	return e
}

// Expired reports whether now is past e's ExpiresAt; an envelope without
// ExpiresAt never expires.
func (e *Envelope) Expired(now time.Time) bool {
	return e.ExpiresAt != nil && now.After(*e.ExpiresAt)
}

// ForRobot returns a deep copy of e addressed to robot, for fan-out. Its ID
// is "<id>.<robot>" for n == 0 and "<id>.<robot>.<n>" for n > 0 (n tells
// apart several copies for the same robot, e.g. the parts of a split
// message). The ID is deterministic, so a retried fan-out is deduplicated; an
// ID that would exceed [MaxIDLen] is shortened to a prefix plus a hash of
// the full derived ID.
func (e *Envelope) ForRobot(robot string, n int) *Envelope {
	c := e.clone()
	c.Robot = robot
	id := e.ID + "." + robot
	if n > 0 {
		id += "." + strconv.Itoa(n)
	}
	c.ID = fitID(id)
	return c
}

// fitID returns a derived id as is when it is at most [MaxIDLen] long,
// else a prefix of it plus a hash of the whole, so that it stays
// deterministic and distinct.
func fitID(id string) string {
	if len(id) <= MaxIDLen {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	h := hex.EncodeToString(sum[:8])
	return id[:MaxIDLen-len(h)-1] + "." + h
}

// clone returns a copy of e sharing no mutable memory with it.
func (e *Envelope) clone() *Envelope {
	c := *e
	c.Message = e.Message.clone()
	if e.At != nil {
		c.At = &At{Mobiles: slices.Clone(e.At.Mobiles), UserIDs: slices.Clone(e.At.UserIDs), All: e.At.All}
	}
	if e.ExpiresAt != nil {
		t := *e.ExpiresAt
		c.ExpiresAt = &t
	}
	c.Labels = maps.Clone(e.Labels)
	return &c
}

func (m Message) clone() Message {
	var c Message
	if m.Text != nil {
		t := *m.Text
		c.Text = &t
	}
	if m.Markdown != nil {
		md := *m.Markdown
		c.Markdown = &md
	}
	if m.Link != nil {
		l := *m.Link
		c.Link = &l
	}
	if m.ActionCard != nil {
		a := *m.ActionCard
		a.Buttons = slices.Clone(a.Buttons)
		c.ActionCard = &a
	}
	if m.FeedCard != nil {
		f := *m.FeedCard
		f.Links = slices.Clone(f.Links)
		c.FeedCard = &f
	}
	return c
}
