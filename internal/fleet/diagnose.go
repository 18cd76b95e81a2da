// Package fleet explains, in one line per problem, what keeps a robot from
// delivering. "producer status" and the console print the same lines.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/stream"
)

// DefaultScanInterval is how long a worker may take, at most, to take up
// a robot's first message: workers create a robot's consumer and lane
// only while it has work, found by a notification or, failing that, by a
// periodic scan of the stream.
const DefaultScanInterval = 30 * time.Second

// Limiter is the limiter's view of a robot, as read by
// [limiter.Inspector.Inspect].
type Limiter struct {
	State limiter.State
	// Limit is the robot's limit; HasLimit is false when it is not known
	// (the robot is not in the configuration), and then the window is not
	// diagnosed.
	Limit    limiter.Limit
	HasLimit bool
}

// Input is what is known about one robot.
type Input struct {
	Topology stream.Topology
	Robot    string
	Queue    stream.RobotQueue
	// Limiter is nil when the limiter was not (or could not be) read.
	Limiter *Limiter
	// Configured is nil without a configuration, else whether the robot is
	// in it; ConfigPath names the file in the message.
	Configured *bool
	ConfigPath string
	// Presence is the live workers' registry (nil when not read): which
	// workers have the robot configured, and which cannot serve it
	// because a limit was reached.
	Presence *ledger.Members
	// OldestAge is how long the robot's oldest queued message has waited
	// ([OldestAge]); 0 when not known.
	OldestAge time.Duration
	// ScanInterval is the workers' scan interval; 0 means
	// [DefaultScanInterval].
	ScanInterval time.Duration
}

// Diagnose explains, one line each and most important first, what keeps
// the robot from delivering; nothing when all looks well.
func Diagnose(in Input) []string {
	var out []string
	q := in.Queue
	scan := in.ScanInterval
	if scan <= 0 {
		scan = DefaultScanInterval
	}
	// A consumer is created when work arrives (and removed when idle): a
	// backlog without one, or without a pull, is normal for up to a scan.
	stale := in.OldestAge > scan
	fresh := in.OldestAge > 0 && !stale
	served := in.Presence != nil && in.Presence.Served(in.Robot)
	if in.Presence != nil {
		if w, why, ok := in.Presence.Unserved(in.Robot); ok {
			out = append(out, fmt.Sprintf("not served: worker %s reached a limit creating its consumer (%s): raise the limit; its log names the robots, botrelay_unserved_robots counts them", w, why))
		}
	}
	switch {
	case q.Backlog > 0 && in.Presence != nil && !served:
		out = append(out, fmt.Sprintf("%s waiting, and no running worker has this robot configured: is it in a worker's configuration, and are the workers running?",
			Plural(q.Backlog, "message", "messages")))
	case q.Backlog > 0 && !q.Consumer && stale:
		out = append(out, fmt.Sprintf("%s waiting, the oldest for %s, and no worker took them up (no consumer %s; workers create it within %s of work arriving): are the workers running? see their logs",
			Plural(q.Backlog, "message", "messages"), CeilSec(in.OldestAge), in.Topology.ConsumerName(in.Robot), scan))
	case q.Backlog > 0 && !q.Consumer && !fresh && !served:
		out = append(out, fmt.Sprintf("%s waiting and no consumer %s yet: normal for up to %s (workers create it when work arrives); if it lasts, is the robot configured on a running worker?",
			Plural(q.Backlog, "message", "messages"), in.Topology.ConsumerName(in.Robot), scan))
	case q.Backlog > 0 && q.Consumer && q.Pending == 0 && q.Waiting == 0 && !fresh:
		out = append(out, "no worker is pulling (is the robot configured on a worker? are the workers running?)")
	}
	if in.Configured != nil && !*in.Configured && q.Backlog > 0 {
		out = append(out, fmt.Sprintf("not in %s: workers using it dead-letter this robot's messages as unknown", in.ConfigPath))
	}
	if ls := in.Limiter; ls != nil {
		s := ls.State
		if s.CoolOffLeft > 0 {
			out = append(out, fmt.Sprintf("cooling off for %s (the platform throttled it)", CeilSec(s.CoolOffLeft)))
		}
		if s.QuietLeft > 0 {
			out = append(out, fmt.Sprintf("restart guard: quiet for %s (the limiter state is new: after a first start, a Redis restart or evictions, robots wait the longest cool-off, at least one window)",
				CeilSec(s.QuietLeft)))
		}
		if ls.HasLimit && q.Backlog > 0 && s.InWindow >= ls.Limit.Max && s.CoolOffLeft == 0 && s.QuietLeft == 0 {
			out = append(out, fmt.Sprintf("rate limit: %d/%d sent in the last %s; next slot in %s",
				s.InWindow, ls.Limit.Max, ls.Limit.Window+ls.Limit.Margin, CeilSec(s.NextSlot)))
		}
	}
	if q.Redelivered > 0 {
		out = append(out, "the pending message was handed out more than once: deliveries are being retried, or a worker died holding it (see the workers' logs)")
	}
	if q.DeadLetters > 0 {
		out = append(out, fmt.Sprintf("%s: producer dlq list --robot %s",
			Plural(q.DeadLetters, "dead letter", "dead letters"), in.Robot))
	}
	return out
}

// Plural formats n with the singular or plural noun.
func Plural(n uint64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.FormatUint(n, 10) + " " + many
}

// CeilSec rounds d up to whole seconds: "wait at most".
func CeilSec(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}

// OldestAge returns how long robot's oldest queued message has waited
// (one direct read of the stream), or 0 when it has none.
func OldestAge(ctx context.Context, js jetstream.JetStream, topo stream.Topology, robot string, now time.Time) (time.Duration, error) {
	s, err := js.Stream(ctx, topo.OutStream())
	if err != nil {
		return 0, fmt.Errorf("fleet: oldest message of %s: %w", robot, err)
	}
	m, err := s.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(topo.OutSubject(robot)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("fleet: oldest message of %s: %w", robot, err)
	}
	return max(now.Sub(m.Time), time.Nanosecond), nil
}
