package limiter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a [Limiter] shared by every process that uses the same Redis (or
// Redis Cluster) and key prefix. Each Reserve is one EVALSHA of one Lua
// script: one round trip, atomic, timed by the Redis server's clock.
//
// Keys, for robot R and prefix P (both keys share the hash tag {R}, so they
// live in one cluster slot):
//
//   - P:{R}:w    sorted set, the log of grants within the window; it expires
//     Window+Margin after the last grant.
//   - P:{R}:cool string, the end of R's cool-off; it expires with it.
//
// An idle robot therefore has no keys. Redis is safe for concurrent use.
type Redis struct {
	rdb    redis.Scripter
	prefix string
	// guard is the restart guard's ARGV[5] (see reserveScript).
	guard        string
	clusterEpoch bool
	// quiet is the restart guard's quiet time beyond a robot's span (see
	// [WithRestartQuiet]).
	quiet time.Duration

	// observe, when set (by tests), sees every decision with the Redis
	// server time at which it was made.
	observe func(robot string, d Decision, at time.Time)
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a [Redis] limiter over rdb, typically a *redis.Client or
// a *redis.ClusterClient. Options: [WithPrefix], [WithRestartGuard],
// [WithClusterKeys]; a *redis.ClusterClient turns [WithClusterKeys] on by
// itself (a wrapper of one must pass it).
//
// NewRedis does not contact Redis; call [Redis.Load] to load the scripts and
// check the connection at start-up, or let the first Reserve load them.
func NewRedis(rdb redis.Scripter, opts ...Option) (*Redis, error) {
	if rdb == nil {
		return nil, fmt.Errorf("%w: nil redis client", ErrInvalidOption)
	}
	o := redisOptions{prefix: DefaultPrefix, guard: true}
	if _, ok := rdb.(*redis.ClusterClient); ok {
		// A global epoch key cannot share a slot with every robot's keys.
		o.clusterEpoch = true
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	r := &Redis{rdb: rdb, prefix: o.prefix, guard: "0", clusterEpoch: o.clusterEpoch, quiet: o.quiet}
	switch {
	case o.guard && o.clusterEpoch:
		r.guard = strconv.FormatInt(int64(clusterEpochTTL/time.Millisecond), 10)
	case o.guard:
		r.guard = "1"
	}
	return r, nil
}

// Load loads the Lua scripts into Redis's script cache (every shard of a
// cluster), so that even the first decision is a single EVALSHA. It doubles
// as a start-up connectivity check. Calling it is optional: a script missing
// from the cache (after a restart or SCRIPT FLUSH) is sent again with EVAL.
//
// Load also refuses a Redis that may evict keys: when the maxmemory-policy
// (INFO memory; every master of a cluster) is not noeviction, it returns an
// error wrapping [ErrEvictionPolicy] naming the policy. Under an evicting
// policy Redis drops keys with a TTL first (volatile-*) or any key
// (allkeys-*) when it is full, and the limiter's windows and cool-offs have
// TTLs. Should the policy change later, the restart guard notices the first
// eviction (INFO stats evicted_keys, recorded in its epoch) and holds every
// robot for its quiet time, failing closed.
func (r *Redis) Load(ctx context.Context) error {
	for _, s := range []*redis.Script{reserveScript, coolOffScript, inspectScript} {
		if err := s.Load(ctx, r.rdb).Err(); err != nil {
			return fmt.Errorf("limiter: load scripts: %w: %w", ErrUnavailable, err)
		}
	}
	return r.checkEviction(ctx)
}

// infoer is the part of a Redis client that reads INFO.
type infoer interface {
	Info(ctx context.Context, section ...string) *redis.StringCmd
}

// checkEviction refuses a maxmemory-policy other than noeviction, on every
// master of a cluster. A client that cannot run INFO is not checked (the
// guard's eviction count still is).
func (r *Redis) checkEviction(ctx context.Context) error {
	check := func(ctx context.Context, c infoer) error {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return fmt.Errorf("limiter: read maxmemory-policy: %w: %w", ErrUnavailable, err)
		}
		policy := infoField(info, "maxmemory_policy")
		if policy == "noeviction" {
			return nil
		}
		if policy == "" {
			policy = "unknown"
		}
		return fmt.Errorf("%w: maxmemory-policy is %s; the limiter needs noeviction, or evicted windows and cool-offs "+
			"would let robots exceed their limits (CONFIG SET maxmemory-policy noeviction, and in redis.conf)",
			ErrEvictionPolicy, policy)
	}
	switch c := r.rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return check(ctx, m) })
	case infoer:
		return check(ctx, c)
	}
	return nil
}

// infoField returns the value of field in an INFO answer, "" when absent.
func infoField(info, field string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// windowKey and coolKey name robot's keys; both carry the hash tag {robot}.
func (r *Redis) windowKey(robot string) string { return r.prefix + ":{" + robot + "}:w" }
func (r *Redis) coolKey(robot string) string   { return r.prefix + ":{" + robot + "}:cool" }

// quietFor is the restart guard's quiet time for a robot counting span:
// the longer of span and [WithRestartQuiet]'s.
func (r *Redis) quietFor(span time.Duration) time.Duration {
	return max(span, r.quiet)
}

// clusterEpochTTL is how long a per-robot epoch outlives the robot's last decision.
const clusterEpochTTL = 24 * time.Hour

// epochKey names the restart guard's epoch: one per Redis, or per robot
// with [WithClusterKeys].
func (r *Redis) epochKey(robot string) string {
	if r.clusterEpoch {
		return r.prefix + ":{" + robot + "}:epoch"
	}
	return r.prefix + ":epoch"
}

// scriptKeys returns the KEYS of reserveScript for robot: its window and
// cool-off, and the epoch key only when the guard is on (Redis Cluster
// refuses a script whose declared keys span slots, used or not).
func (r *Redis) scriptKeys(robot string) []string {
	if r.guard == "0" {
		return []string{r.windowKey(robot), r.coolKey(robot)}
	}
	return []string{r.windowKey(robot), r.coolKey(robot), r.epochKey(robot)}
}

// Reserve implements [Limiter]. It returns an error wrapping [ErrInvalidLimit]
// or [ErrInvalidRobot] for bad arguments and [ErrUnavailable] when Redis
// cannot decide; with an error, the Decision is never Allowed.
func (r *Redis) Reserve(ctx context.Context, robot string, l Limit) (Decision, error) {
	keys, args, err := r.ReserveArgs(robot, l)
	if err != nil {
		return Decision{}, err
	}
	vals, err := reserveScript.Run(ctx, r.rdb, keys, args...).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("limiter: reserve %q: %w: %w", robot, ErrUnavailable, err)
	}
	return r.ParseDecision(robot, vals)
}

// ReserveArgs returns the keys and the arguments of limiter_reserve
// ([ReserveLua]) for one decision for robot under l, for a script composed
// from [ReserveLua]. On a Redis Cluster every key carries the hash tag
// {robot}. Errors wrap [ErrInvalidLimit] or [ErrInvalidRobot].
func (r *Redis) ReserveArgs(robot string, l Limit) (keys []string, args []any, err error) {
	if _, err := checkLimit(l); err != nil {
		return nil, nil, fmt.Errorf("limiter: reserve %q: %w", robot, err)
	}
	if err := checkRobot(robot); err != nil {
		return nil, nil, fmt.Errorf("limiter: reserve: %w", err)
	}
	ws := l.windows() // the longest first: it trims the log and times the guard
	span := ws[0].span
	spanUS := ceilDiv(span, time.Microsecond)
	spanMS := ceilDiv(span, time.Millisecond)
	token := strconv.FormatUint(rand.Uint64(), 36)
	args = []any{ws[0].max, spanUS, spanMS, token, r.guard, ceilDiv(r.quietFor(span), time.Microsecond)}
	for _, w := range ws[1:] {
		args = append(args, w.max, ceilDiv(w.span, time.Microsecond))
	}
	return r.scriptKeys(robot), args, nil
}

// ParseDecision reads limiter_reserve's answer ([ReserveLua]) for robot:
// {allowed, retry µs, cooling, now µs}. Errors wrap [ErrUnavailable].
func (r *Redis) ParseDecision(robot string, vals []int64) (Decision, error) {
	if len(vals) != 4 {
		return Decision{}, fmt.Errorf("limiter: reserve %q: %w: script returned %d values", robot, ErrUnavailable, len(vals))
	}
	d := Decision{
		Allowed:    vals[0] == 1,
		RetryAfter: time.Duration(vals[1]) * time.Microsecond,
		CoolingOff: vals[2] == 1,
	}
	if r.observe != nil {
		r.observe(robot, d, time.UnixMicro(vals[3]))
	}
	return d, nil
}

// Client returns the Redis client the limiter uses.
func (r *Redis) Client() redis.Scripter { return r.rdb }

// CoolOff implements [Limiter]: every process sharing the Redis sees the
// cool-off at once. A cool-off never shortens one already running; d <= 0
// does nothing. Errors wrap [ErrInvalidRobot] or [ErrUnavailable].
func (r *Redis) CoolOff(ctx context.Context, robot string, d time.Duration) error {
	if err := checkRobot(robot); err != nil {
		return fmt.Errorf("limiter: cool off: %w", err)
	}
	if d <= 0 {
		return nil
	}
	err := coolOffScript.Run(ctx, r.rdb, []string{r.coolKey(robot)},
		ceilDiv(d, time.Microsecond), ceilDiv(d, time.Millisecond)+1,
	).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("limiter: cool off %q: %w: %w", robot, ErrUnavailable, err)
	}
	return nil
}

// ceilDiv returns d/unit rounded up.
func ceilDiv(d, unit time.Duration) int64 {
	return int64((d + unit - 1) / unit)
}
