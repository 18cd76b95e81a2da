// Package fleet explains, in one line per problem, what keeps a robot from
// delivering. "producer status" and the console print the same lines.
package fleet

import (
	"fmt"
	"strconv"
	"time"

	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/stream"
)

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
}

// Diagnose explains, one line each and most important first, what keeps
// the robot from delivering; nothing when all looks well.
func Diagnose(in Input) []string {
	var out []string
	q := in.Queue
	switch {
	case q.Backlog > 0 && !q.Consumer:
		out = append(out, fmt.Sprintf("%s waiting, and no worker has ever served this robot (no consumer %s): is it configured on a worker, and are the workers running?",
			Plural(q.Backlog, "message", "messages"), in.Topology.ConsumerName(in.Robot)))
	case q.Backlog > 0 && q.Pending == 0 && q.Waiting == 0:
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
