package deadletter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/stream"
)

// ErrInvalidFilter is wrapped by the errors of [Filter.Validate] and
// [ParseFilter].
var ErrInvalidFilter = errors.New("deadletter: invalid filter")

// Reasons returns every [Reason] a worker writes, in a stable order.
func Reasons() []Reason {
	return []Reason{ReasonDecode, ReasonUnknownRobot, ReasonMissingKeyword,
		ReasonPermanent, ReasonExhausted, ReasonExpired, ReasonRedelivered}
}

// Filter selects dead letters. The zero Filter matches every record; each
// set field narrows it, and a record must match all of them. The command
// line (producer dlq list/replay) and the console use the same Filter, so
// that a selection means the same thing in both.
type Filter struct {
	// Robot is the robot's name; "" any. [ListFiltered] filters it on the
	// server (the robot's dead-letter subject).
	Robot string
	// Reason is the dead-letter reason; "" any.
	Reason Reason
	// ErrCode, when HasErrCode, is the platform's errcode the record must
	// hold (0 matches records without one).
	ErrCode    int
	HasErrCode bool
	// Since and Until bound the record's DeadAt: Since <= DeadAt < Until;
	// a zero time leaves its side open.
	Since, Until time.Time
	// Text, when set, must occur (case-insensitively) in the record's
	// robot, detail, errmsg, envelope id or message content, or its raw
	// payload.
	Text string
}

// Validate checks the filter's fields: a known reason, a robot name
// without subject wildcards, Since before Until. Errors wrap
// [ErrInvalidFilter].
func (f Filter) Validate() error {
	if f.Robot != "" && strings.ContainsAny(f.Robot, ".*> \t\r\n{}") {
		return fmt.Errorf("%w: robot %q is not a robot name", ErrInvalidFilter, f.Robot)
	}
	if f.Reason != "" && !slices.Contains(Reasons(), f.Reason) {
		names := make([]string, 0, len(Reasons()))
		for _, r := range Reasons() {
			names = append(names, string(r))
		}
		return fmt.Errorf("%w: unknown reason %q: want one of %s", ErrInvalidFilter, f.Reason, strings.Join(names, ", "))
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return fmt.Errorf("%w: since (%s) must be before until (%s)", ErrInvalidFilter,
			f.Since.UTC().Format(time.RFC3339), f.Until.UTC().Format(time.RFC3339))
	}
	return nil
}

// IsZero reports whether f matches every record.
func (f Filter) IsZero() bool { return f == Filter{} }

// Match reports whether rec passes every set field of f.
func (f Filter) Match(rec Record) bool {
	switch {
	case f.Robot != "" && rec.Robot != f.Robot,
		f.Reason != "" && rec.Reason != f.Reason,
		f.HasErrCode && rec.ErrCode != f.ErrCode,
		!f.Since.IsZero() && rec.DeadAt.Before(f.Since),
		!f.Until.IsZero() && !rec.DeadAt.Before(f.Until):
		return false
	}
	if f.Text == "" {
		return true
	}
	q := strings.ToLower(f.Text)
	fields := []string{rec.Robot, rec.Detail, rec.ErrMsg, string(rec.Raw)}
	if env := rec.Envelope; env != nil {
		fields = append(fields, env.ID, env.Message.PlainText())
	}
	for _, s := range fields {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

// ParseFilter builds a Filter from textual values, as query parameters or
// flags give them: robot, reason, errcode (an integer), since and until
// (RFC 3339 times, or durations such as "2h" meaning that long before
// now), and q (text search). Empty values are unset. The result is
// validated; errors wrap [ErrInvalidFilter].
func ParseFilter(robot, reason, errcode, since, until, q string, now time.Time) (Filter, error) {
	f := Filter{Robot: robot, Reason: Reason(reason), Text: q}
	if errcode != "" {
		n, err := strconv.Atoi(errcode)
		if err != nil {
			return f, fmt.Errorf("%w: errcode %q is not an integer", ErrInvalidFilter, errcode)
		}
		f.ErrCode, f.HasErrCode = n, true
	}
	var err error
	if f.Since, err = parseTime("since", since, now); err != nil {
		return f, err
	}
	if f.Until, err = parseTime("until", until, now); err != nil {
		return f, err
	}
	return f, f.Validate()
}

// parseTime reads an RFC 3339 time, or a duration before now.
func parseTime(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%w: %s %q: want an RFC 3339 time (2026-12-01T08:00:00Z) or a duration ago (90m)",
		ErrInvalidFilter, name, s)
}

// ListFiltered returns up to limit dead letters matching f (all when
// limit <= 0), oldest first. The robot is filtered on the server, the rest
// while reading (see [List]).
func ListFiltered(ctx context.Context, js jetstream.JetStream, topo stream.Topology, f Filter, limit int) ([]Entry, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	all, err := List(ctx, js, topo, f.Robot, 0)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, e := range all {
		if f.Match(e.Record) {
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out, nil
}
