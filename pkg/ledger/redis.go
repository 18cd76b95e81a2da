package ledger

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a [Ledger] shared by every worker, one small hash per message
// ("<prefix>:l:{<key>}", one-letter fields) expiring a TTL after its last
// change, and a [Presence]. Every ledger call is one round trip; Claim and the
// recording calls are Lua scripts, so they are atomic and the in-flight
// lease is timed by the Redis server's clock.
type Redis struct {
	rdb     redis.Cmdable
	prefix  string
	ttl     time.Duration
	doneTTL time.Duration
	sets    setCache // presence: robot sets by digest
}

// NewRedis returns a ledger on rdb with keys under prefix ("botrelay" when
// empty). ttl is the life of an entry after its last change (0 means
// [DefaultTTL]); a delivered entry lives min(ttl, doneTTL) ([DefaultDoneTTL]
// unless changed with [Redis.WithDoneTTL]).
func NewRedis(rdb redis.Cmdable, prefix string, ttl time.Duration) *Redis {
	if prefix == "" {
		prefix = "botrelay"
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Redis{rdb: rdb, prefix: prefix, ttl: ttl, doneTTL: min(ttl, DefaultDoneTTL)}
}

// WithDoneTTL sets how long a delivered entry is kept (capped at the TTL)
// and returns l.
func (l *Redis) WithDoneTTL(d time.Duration) *Redis {
	if d > 0 {
		l.doneTTL = min(d, l.ttl)
	}
	return l
}

// Key returns the Redis key of ledger key k (for tests and operators).
func (l *Redis) Key(k string) string { return l.prefix + ":l:{" + k + "}" }

// Fields of an entry: kept to one letter, as there is one entry per message.
const (
	fFailures  = "f" // failed attempts
	fFirst     = "s" // first failed attempt, unix ms
	fWaits     = "w" // hand-backs
	fWaited    = "x" // ms waited since the first failure
	fThrottles = "t" // throttles and platform-requested waits
	fDelivered = "d" // "1" once delivered
	fMsgID     = "m" // the platform's message id
	fPermanent = "p" // recorded permanent outcome
	fHolder    = "h" // in-flight holder
	fUntil     = "u" // end of the holder's lease, unix ms (Redis clock)
)

// claimScript marks KEYS[1] in flight unless the claim rule says no (the
// same rule as decideClaim; TestClaimRule holds both to it).
//
// ARGV: holder, lease ms, takeover "1"/"0", ttl ms. Returns {code, entry as
// HGETALL before the mark, the script's time in ms}; code follows
// [Claim]'s order.
var claimScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local e = {}
for i = 1, #all, 2 do e[all[i]] = all[i + 1] end
local code = 1
local foreign = e['h'] and e['h'] ~= ARGV[1]
if e['d'] == '1' then code = 2
elseif e['p'] then code = 3
elseif foreign and tonumber(e['u'] or '0') > now then code = 4
elseif foreign and ARGV[3] ~= '1' then code = 5
end
if code == 1 then
  redis.call('HSET', KEYS[1], 'h', ARGV[1], 'u', string.format('%.0f', now + tonumber(ARGV[2])))
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return {code, all, now}
`)

// recordScript applies one recording operation to KEYS[1], clears the
// in-flight mark when ARGV[1] holds it, and refreshes the TTL.
//
// ARGV: holder, op ("fail" at-ms | "wait" ms | "throttle" ms | "done"
// msg-id | "perm" outcome | "release" -), argument, ttl ms, "1" to return
// the entry as HGETALL.
var recordScript = redis.NewScript(`
local k, op, arg = KEYS[1], ARGV[2], ARGV[3]
if op == 'fail' then
  redis.call('HINCRBY', k, 'f', 1)
  redis.call('HSETNX', k, 's', arg)
elseif op == 'wait' or op == 'throttle' then
  if op == 'throttle' then redis.call('HINCRBY', k, 't', 1) else redis.call('HINCRBY', k, 'w', 1) end
  if redis.call('HEXISTS', k, 's') == 1 then redis.call('HINCRBY', k, 'x', arg) end
elseif op == 'done' then
  redis.call('HSET', k, 'd', '1')
  if arg ~= '' then redis.call('HSET', k, 'm', arg) end
elseif op == 'perm' then
  redis.call('HSET', k, 'p', arg)
end
if redis.call('HGET', k, 'h') == ARGV[1] then redis.call('HDEL', k, 'h', 'u') end
if redis.call('EXISTS', k) == 1 then redis.call('PEXPIRE', k, ARGV[4]) end
if ARGV[5] == '1' then return redis.call('HGETALL', k) end
return {}
`)

// Load loads the scripts into Redis's script cache; optional (a missing
// script is sent with EVAL), it doubles as a start-up check.
func (l *Redis) Load(ctx context.Context) error {
	for _, s := range []*redis.Script{claimScript, recordScript} {
		if err := s.Load(ctx, l.rdb).Err(); err != nil {
			return fmt.Errorf("%w: load scripts: %w", ErrUnavailable, err)
		}
	}
	return nil
}

// Get implements [Ledger].
func (l *Redis) Get(ctx context.Context, key string) (State, error) {
	m, err := l.rdb.HGetAll(ctx, l.Key(key)).Result()
	if err != nil {
		return State{}, fmt.Errorf("%w: get %s: %w", ErrUnavailable, key, err)
	}
	return parseState(m), nil
}

// Claim implements [Ledger].
func (l *Redis) Claim(ctx context.Context, key, holder string, lease time.Duration, takeover bool) (Claim, State, error) {
	tk := "0"
	if takeover {
		tk = "1"
	}
	v, err := claimScript.Run(ctx, l.rdb, []string{l.Key(key)},
		holder, max(lease.Milliseconds(), 1), tk, l.ttl.Milliseconds()).Slice()
	if err != nil {
		return 0, State{}, fmt.Errorf("%w: claim %s: %w", ErrUnavailable, key, err)
	}
	if len(v) != 3 {
		return 0, State{}, fmt.Errorf("%w: claim %s: script returned %d values", ErrUnavailable, key, len(v))
	}
	code, _ := v[0].(int64)
	flat, _ := v[1].([]any)
	if code < int64(Claimed) || code > int64(UnknownOutcome) {
		return 0, State{}, fmt.Errorf("%w: claim %s: script returned code %v", ErrUnavailable, key, v[0])
	}
	st := parseState(pairs(flat))
	if now, ok := v[2].(int64); ok && !st.HeldUntil.IsZero() {
		// The lease is timed by Redis's clock: say when it ends by ours.
		st.HeldUntil = time.Now().Add(st.HeldUntil.Sub(time.UnixMilli(now)))
	}
	return Claim(code), st, nil
}

func (l *Redis) record(ctx context.Context, key, holder, op, arg string, ttl time.Duration, state bool) (State, error) {
	want := "0"
	if state {
		want = "1"
	}
	v, err := recordScript.Run(ctx, l.rdb, []string{l.Key(key)}, holder, op, arg, ttl.Milliseconds(), want).Slice()
	if err != nil {
		return State{}, fmt.Errorf("%w: %s %s: %w", ErrUnavailable, op, key, err)
	}
	return parseState(pairs(v)), nil
}

// Release implements [Ledger].
func (l *Redis) Release(ctx context.Context, key, holder string) error {
	_, err := l.record(ctx, key, holder, "release", "-", l.ttl, false)
	return err
}

// RecordFailure implements [Ledger].
func (l *Redis) RecordFailure(ctx context.Context, key, holder string, at time.Time) (State, error) {
	return l.record(ctx, key, holder, "fail", strconv.FormatInt(at.UnixMilli(), 10), l.ttl, true)
}

// RecordWait implements [Ledger].
func (l *Redis) RecordWait(ctx context.Context, key, holder string, d time.Duration) (State, error) {
	return l.record(ctx, key, holder, "wait", strconv.FormatInt(max(d, 0).Milliseconds(), 10), l.ttl, true)
}

// RecordThrottle implements [Ledger].
func (l *Redis) RecordThrottle(ctx context.Context, key, holder string, d time.Duration) (State, error) {
	return l.record(ctx, key, holder, "throttle", strconv.FormatInt(max(d, 0).Milliseconds(), 10), l.ttl, true)
}

// MarkDelivered implements [Ledger].
func (l *Redis) MarkDelivered(ctx context.Context, key, holder, messageID string) error {
	_, err := l.record(ctx, key, holder, "done", messageID, l.doneTTL, false)
	return err
}

// MarkPermanent implements [Ledger].
func (l *Redis) MarkPermanent(ctx context.Context, key, holder, outcome string) error {
	if outcome == "" {
		outcome = "permanent"
	}
	_, err := l.record(ctx, key, holder, "perm", outcome, l.ttl, false)
	return err
}

// pairs turns a flat HGETALL answer from a script into a map.
func pairs(flat []any) map[string]string {
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		m[k] = v
	}
	return m
}

func parseState(m map[string]string) State {
	var s State
	s.Failures, _ = strconv.Atoi(m[fFailures])
	s.Waits, _ = strconv.Atoi(m[fWaits])
	s.Throttles, _ = strconv.Atoi(m[fThrottles])
	if ms, err := strconv.ParseInt(m[fWaited], 10, 64); err == nil {
		s.Waited = time.Duration(ms) * time.Millisecond
	}
	if ms, err := strconv.ParseInt(m[fFirst], 10, 64); err == nil {
		s.FirstAttempt = time.UnixMilli(ms)
	}
	s.Delivered = m[fDelivered] == "1"
	s.MessageID = m[fMsgID]
	s.Permanent = m[fPermanent]
	s.Holder = m[fHolder]
	if ms, err := strconv.ParseInt(m[fUntil], 10, 64); err == nil {
		s.HeldUntil = time.UnixMilli(ms)
	}
	return s
}
