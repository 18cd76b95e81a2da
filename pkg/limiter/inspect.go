package limiter

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
)

// State is a read-only snapshot of one robot's limiter state, for people
// asking why a robot is not delivering. It is the answer to
// [Inspector.Inspect].
type State struct {
	// InWindow is how many grants are counted in the current
	// Window + Margin.
	InWindow int
	// CoolOffLeft is how long the robot's cool-off (the platform throttled
	// it) still lasts; 0 when it is not cooling off.
	CoolOffLeft time.Duration
	// WindowLeft is how long until the window has a free place, if nothing
	// else reserves meanwhile: 0 when it has one now. Only the Limit's
	// main window counts (not Also).
	WindowLeft time.Duration
	// NextSlot is how long until Reserve would grant a slot, if nothing
	// else reserves meanwhile: the longest of CoolOffLeft, QuietLeft and
	// WindowLeft. 0 when a slot is free now.
	NextSlot time.Duration
	// QuietLeft is the restart guard's quiet time left (see
	// [WithRestartGuard], [WithRestartQuiet] and [Memory.Quiet]); 0 when
	// the guard is off or its quiet time is over. When the Redis state is
	// new (no epoch yet, another server run, evictions), it is the whole
	// quiet time: it starts with the next Reserve.
	QuietLeft time.Duration
	// QuietPending is true when QuietLeft is a quiet time that has not
	// started: the Redis state is new and the next Reserve, of any robot
	// sharing the guard's epoch, starts it.
	QuietPending bool
	// LastGrantAgo is how long ago the newest grant counted in InWindow
	// was made, by whoever reserves under the robot's key; 0 when
	// InWindow is 0, negative when that grant is dated after the Redis
	// server's now (its clock stepped back, or a failover to a server
	// whose clock is behind): no evidence of when it was made. A grant
	// since a given moment says that some lane of the key was posting
	// then.
	LastGrantAgo time.Duration
}

// Inspector reports a robot's limiter state without changing it.
// [Redis] and [Memory] implement it.
type Inspector interface {
	// Inspect returns robot's state under the limit l. It writes nothing:
	// no grant is recorded and no state is created.
	Inspect(ctx context.Context, robot string, l Limit) (State, error)
}

var (
	_ Inspector = (*Redis)(nil)
	_ Inspector = (*Memory)(nil)
)

// inspectScript reads one robot's state, atomically and without writing
// (it runs under EVAL_RO too; Inspect uses plain EVALSHA so that Redis
// older than 7 works). Times are µs of the Redis server's clock.
//
//   - KEYS[1]: the robot's window log (see reserveScript).
//   - KEYS[2]: the robot's cool-off, a string holding its end (µs).
//   - KEYS[3]: the restart guard's epoch key; absent when ARGV[3] is "0".
//   - ARGV[1]: Max, the grants allowed in any rolling span.
//   - ARGV[2]: span = Window + Margin, in µs.
//   - ARGV[3]: "0" guard off, anything else guard on.
//   - ARGV[4]: the guard's quiet time in µs (see reserveScript).
//   - Returns {in_window, cool_left_us, slot_us, quiet_left_us, pending,
//     last_ago_us}: the grants within the span; the cool-off left (0 if
//     none); the wait until the window has a free place (0 if it has one
//     now); the guard's quiet time left (the whole quiet time when the
//     epoch is missing, from another server run or another eviction count,
//     since the next Reserve starts it); pending 1 in that case, else 0;
//     how long ago the newest counted grant was made (0 if none, -1 if it
//     is dated after now). A cool-off value that is not a number makes the
//     script fail, as Reserve does.
var inspectScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max = tonumber(ARGV[1])
local span = tonumber(ARGV[2])

local coolLeft = 0
local cool = redis.call('GET', KEYS[2])
if cool then
  coolLeft = tonumber(cool) - now
  if coolLeft < 0 then
    coolLeft = 0
  end
end

local quietLeft = 0
local pending = 0
if ARGV[3] ~= '0' then
  local quiet = tonumber(ARGV[4])
  local rid = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
  local evicted = string.match(redis.call('INFO', 'stats'), 'evicted_keys:(%d+)') or ''
  local v = redis.call('GET', KEYS[3])
  local ep, erid, eev
  if v then
    ep, erid, eev = string.match(v, '^(%d+):?(%x*):?(%d*)$')
    ep = tonumber(ep)
  end
  if not ep or (erid ~= '' and (erid ~= rid or eev ~= evicted)) then
    quietLeft = quiet -- the next Reserve starts the quiet time
    pending = 1
  else
    quietLeft = ep + quiet - now
    if quietLeft < 0 then
      quietLeft = 0
    end
  end
end

-- A grant at t occupies [t, t+span): count those with t > now-span.
local from = string.format('(%.0f', now - span)
local n = redis.call('ZCOUNT', KEYS[1], from, '+inf')
local slot = 0
local lastAgo = 0
if n > 0 then
  local e = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', from, 'WITHSCORES', 'LIMIT', 0, 1)
  lastAgo = now - tonumber(e[2])
  if lastAgo < 0 then
    lastAgo = -1 -- dated after now: no evidence
  end
end
if n >= max then
  -- A place frees when the (n-max+1)-th oldest counted grant leaves.
  local e = redis.call('ZRANGEBYSCORE', KEYS[1], from, '+inf', 'WITHSCORES', 'LIMIT', n - max, 1)
  slot = tonumber(e[2]) + span - now
  if slot < 1 then
    slot = 1
  end
end
return {n, coolLeft, slot, quietLeft, pending, lastAgo}
`)

// Inspect implements [Inspector] in one round trip (one EVALSHA of a
// read-only script), with the Redis server's clock. It never creates the
// restart guard's epoch, which Reserve does when it is missing. Errors wrap
// [ErrInvalidLimit], [ErrInvalidRobot] or [ErrUnavailable].
func (r *Redis) Inspect(ctx context.Context, robot string, l Limit) (State, error) {
	span, err := checkLimit(l)
	if err != nil {
		return State{}, fmt.Errorf("limiter: inspect %q: %w", robot, err)
	}
	if err := checkRobot(robot); err != nil {
		return State{}, fmt.Errorf("limiter: inspect: %w", err)
	}
	vals, err := inspectScript.Run(ctx, r.rdb,
		r.scriptKeys(robot),
		l.Max, ceilDiv(span, time.Microsecond), r.guard, ceilDiv(r.quietFor(span), time.Microsecond),
	).Int64Slice()
	if err != nil {
		return State{}, fmt.Errorf("limiter: inspect %q: %w: %w", robot, ErrUnavailable, err)
	}
	if len(vals) != 6 {
		return State{}, fmt.Errorf("limiter: inspect %q: %w: script returned %d values", robot, ErrUnavailable, len(vals))
	}
	s := State{
		InWindow:     int(vals[0]),
		CoolOffLeft:  time.Duration(vals[1]) * time.Microsecond,
		QuietLeft:    time.Duration(vals[3]) * time.Microsecond,
		WindowLeft:   time.Duration(vals[2]) * time.Microsecond,
		QuietPending: vals[4] == 1,
		LastGrantAgo: time.Duration(vals[5]) * time.Microsecond,
	}
	s.NextSlot = max(s.CoolOffLeft, s.QuietLeft, s.WindowLeft)
	return s, nil
}

// Inspect implements [Inspector]. QuietLeft is what is left of
// [Memory.Quiet]. It neither records a grant nor creates state for an
// unknown robot. Errors wrap [ErrInvalidLimit] or [ErrInvalidRobot].
func (m *Memory) Inspect(_ context.Context, robot string, l Limit) (State, error) {
	span, err := checkLimit(l)
	if err != nil {
		return State{}, fmt.Errorf("limiter: inspect %q: %w", robot, err)
	}
	if err := checkRobot(robot); err != nil {
		return State{}, fmt.Errorf("limiter: inspect: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock()
	var s State
	if now.Before(m.quietUntil) {
		s.QuietLeft = m.quietUntil.Sub(now)
	}
	r := m.robots[robot]
	if r == nil {
		s.NextSlot = s.QuietLeft
		return s, nil
	}
	if now.Before(r.coolUntil) {
		s.CoolOffLeft = r.coolUntil.Sub(now)
	}
	// Grants at or before now-span no longer count (see reserve); the log
	// is ascending, so the counted ones are a suffix.
	cut := now.Add(-span)
	from := sort.Search(len(r.log), func(i int) bool { return r.log[i].After(cut) })
	counted := r.log[from:]
	s.InWindow = len(counted)
	if n := len(counted); n > 0 {
		s.LastGrantAgo = now.Sub(counted[n-1])
		if s.LastGrantAgo < 0 {
			s.LastGrantAgo = -time.Microsecond // as Redis: no evidence
		}
	}
	var slot time.Duration
	if n := len(counted); n >= l.Max {
		slot = counted[n-l.Max].Add(span).Sub(now)
		if slot <= 0 {
			slot = 1
		}
	}
	s.WindowLeft = slot
	s.NextSlot = max(s.CoolOffLeft, s.QuietLeft, slot)
	return s, nil
}
