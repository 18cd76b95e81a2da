package limiter

import (
	"fmt"
	"strings"
	"time"
)

// DefaultPrefix starts every Redis key unless [WithPrefix] says otherwise.
const DefaultPrefix = "botrelay"

// Option configures [NewRedis]. Options validate their value and return an
// error wrapping [ErrInvalidOption] when it is unusable.
type Option func(*redisOptions) error

type redisOptions struct {
	prefix       string
	guard        bool
	clusterEpoch bool
	quiet        time.Duration
}

// WithRestartGuard turns the restart guard on or off (default on).
//
// Redis without persistence forgets every window and cool-off when it
// restarts, and a new deployment knows nothing of what another sender
// posted a moment ago. With the guard on, the limiter keeps an epoch key
// holding the time the Redis state began (with the server's run_id and
// eviction count, so that a restore from a snapshot or evicted keys count
// as a new state too); for the quiet time after it (one Window+Margin, or
// longer with [WithRestartQuiet]) no slot is granted to any robot, so sends
// made before the state was lost cannot be exceeded. Turn it off only where
// Redis persists its data (AOF) and nothing else posts to the robots.
func WithRestartGuard(on bool) Option {
	return func(o *redisOptions) error {
		o.guard = on
		return nil
	}
}

// WithRestartQuiet makes the restart guard's quiet time at least d
// (default 0: one Window+Margin of the robot): after the Redis state is new
// (first start, restart, restore, evictions), no slot is granted to any
// robot for max(Window+Margin, d).
//
// Pass the longest cool-off of the platforms in use (10 minutes by
// default). A robot the platform banned just before Redis lost its state
// has lost its cool-off too; without this it would be posted again one
// window after the restart, inside the ban, and be banned again. The cost:
// after a first start or a Redis restart every robot waits that long. d
// must not be negative.
func WithRestartQuiet(d time.Duration) Option {
	return func(o *redisOptions) error {
		if d < 0 {
			return fmt.Errorf("%w: restart quiet %v < 0", ErrInvalidOption, d)
		}
		o.quiet = d
		return nil
	}
}

// WithClusterKeys keeps the restart guard's epoch per robot
// ("<prefix>:{<robot>}:epoch", expiring after a day without grants), so every
// key a decision touches lies in the robot's cluster slot. Use it on Redis
// Cluster; [NewRedis] turns it on by itself when given a *redis.ClusterClient.
// A robot idle for more than a day then waits the quiet time before its
// first grant.
func WithClusterKeys() Option {
	return func(o *redisOptions) error {
		o.clusterEpoch = true
		return nil
	}
}

// WithPrefix sets the prefix of every key (default [DefaultPrefix]). Every
// process limiting the same robots must use the same prefix. The prefix must
// be non-empty and hold no '{' or '}'.
func WithPrefix(p string) Option {
	return func(o *redisOptions) error {
		if p == "" {
			return fmt.Errorf("%w: empty prefix", ErrInvalidOption)
		}
		if strings.ContainsAny(p, "{}") {
			return fmt.Errorf("%w: prefix %q holds '{' or '}'", ErrInvalidOption, p)
		}
		o.prefix = p
		return nil
	}
}
