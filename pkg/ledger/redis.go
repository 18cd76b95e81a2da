package ledger

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a [Ledger] shared by every worker, one small hash per message
// ("<prefix>:l:{<key>}", or with [Redis.WithHashTag]
// "<prefix>:l:{<tag>}<key>"; one-letter fields) expiring a TTL after its last
// change, and a [Presence]. Every ledger call is one round trip; Claim and the
// recording calls are Lua scripts, so they are atomic and the in-flight
// lease is timed by the Redis server's clock.
type Redis struct {
	rdb     redis.Cmdable
	prefix  string
	ttl     time.Duration
	doneTTL time.Duration
	sets    setCache // presence: robot sets by digest
	// tag, when set, gives an entry's hash tag ([Redis.WithHashTag]).
	tag func(key string) string
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

// WithHashTag has entries stored under a Redis Cluster hash tag of their
// own: ledger key k is stored as "<prefix>:l:{<tag(k)>}<k>" when tag(k) is
// neither empty nor holds '{' or '}' (else as without it), so that it lives
// in the slot of other keys carrying that tag. The worker tags a message's
// entry with its robot's limiter key ([RobotTags]), so that the claim and
// the limiter's decision run in one script on a cluster (pkg/gate). tag
// must answer the same for a key for the entry's whole life. It returns l.
func (l *Redis) WithHashTag(tag func(key string) string) *Redis {
	l.tag = tag
	return l
}

// RobotTags gives the hash tags of keys scoped by robot ("<robot>/<id>",
// as the worker makes them) from a robot → tag map that may be replaced
// while in use (a configuration reload): pass its [RobotTags.Tag] to
// [Redis.WithHashTag]. A robot not in the map has no tag. Safe for
// concurrent use.
type RobotTags struct {
	m atomic.Pointer[map[string]string]
}

// NewRobotTags returns the [RobotTags] of tags (robot name → tag).
func NewRobotTags(tags map[string]string) *RobotTags {
	t := &RobotTags{}
	t.Set(tags)
	return t
}

// Set replaces the map (the caller must not change tags afterwards).
func (t *RobotTags) Set(tags map[string]string) { t.m.Store(&tags) }

// Tag returns the tag of key: its robot's, "" for a key without a robot
// or a robot not in the map.
func (t *RobotTags) Tag(key string) string {
	robot, _, ok := strings.Cut(key, "/")
	if !ok {
		return ""
	}
	return (*t.m.Load())[robot]
}

// Key returns the Redis key of ledger key k (for tests and operators):
// "<prefix>:l:{<k>}", or "<prefix>:l:{<tag>}<k>" with [Redis.WithHashTag].
func (l *Redis) Key(k string) string {
	if l.tag != nil {
		if t := l.tag(k); t != "" && !strings.ContainsAny(t, "{}") {
			return l.prefix + ":l:{" + t + "}" + k
		}
	}
	return l.prefix + ":l:{" + k + "}"
}

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
	fMember    = "r" // the pool member the last claim's request went to
)

// ClaimLua is the Lua source of the claim, for scripts composed from it
// (pkg/gate runs it with the limiter's decision in one EVALSHA). It
// defines
//
//	local function ledger_claim(k, holder, lease_ms, takeover, ttl_ms, done_ttl_ms, member, t)
//
// which marks entry k in flight by holder for lease_ms unless the claim
// rule says no (the same rule as decideClaim; TestClaimRule holds both to
// it), refreshing its TTL to ttl_ms on a mark, and a delivered entry's to
// done_ttl_ms when it has less left (its message is still in the stream:
// a delete that failed, a second lane on it; the entry must outlive the
// message, or the message is posted again once it is forgotten). member,
// when not empty, is recorded with a mark: the pool member the request
// goes to ([State.Member]). takeover is "1" or "0"; t is the answer of
// redis.call('TIME'). It returns {code, entry as HGETALL
// before the mark, the time in ms} (code follows [Claim]'s order) and the
// entry before the mark as a table of fields.
const ClaimLua = `
local function ledger_claim(k, holder, lease, takeover, ttl, donettl, member, t)
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local all = redis.call('HGETALL', k)
  local e = {}
  for i = 1, #all, 2 do e[all[i]] = all[i + 1] end
  local code = 1
  local foreign = e['h'] and e['h'] ~= holder
  if e['d'] == '1' then code = 2
  elseif e['p'] then code = 3
  elseif foreign and tonumber(e['u'] or '0') > now then code = 4
  elseif foreign and takeover ~= '1' then code = 5
  end
  if code == 1 then
    redis.call('HSET', k, 'h', holder, 'u', string.format('%.0f', now + tonumber(lease)))
    if member ~= '' then redis.call('HSET', k, 'r', member) end
    redis.call('PEXPIRE', k, ttl)
  elseif code == 2 and redis.call('PTTL', k) < tonumber(donettl) then
    redis.call('PEXPIRE', k, donettl) -- never shortened (a record op gives the longer TTL)
  end
  return {code, all, now}, e
end
`

// RecordLua is the Lua source of the recording operations, for scripts
// composed from it. It defines
//
//	local function ledger_record(k, holder, op, arg, ttl_ms, want)
//
// which applies op to entry k (op "fail" with arg the attempt's unix ms,
// "wait" or "throttle" with arg ms, "done" with arg the platform's message
// id, "perm" with arg the outcome, "release" with arg "-"), clears the
// in-flight mark when holder holds it, and refreshes the TTL to ttl_ms. It
// returns the entry as HGETALL when want is "1", else an empty table.
const RecordLua = `
local function ledger_record(k, holder, op, arg, ttl, want)
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
  if redis.call('HGET', k, 'h') == holder then redis.call('HDEL', k, 'h', 'u') end
  if redis.call('EXISTS', k) == 1 then redis.call('PEXPIRE', k, ttl) end
  if want == '1' then return redis.call('HGETALL', k) end
  return {}
end
`

// claimScript runs [ClaimLua] on KEYS[1].
//
// ARGV: holder, lease ms, takeover "1"/"0", ttl ms, done ttl ms, member.
// Returns {code, entry as HGETALL before the mark, the script's time in
// ms}.
var claimScript = redis.NewScript(ClaimLua + `
return (ledger_claim(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], redis.call('TIME')))
`)

// recordScript runs [RecordLua] on KEYS[1].
//
// ARGV: holder, op, argument, ttl ms, "1" to return the entry as HGETALL.
var recordScript = redis.NewScript(RecordLua + `
return ledger_record(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
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
	return l.ClaimMember(ctx, key, holder, "", lease, takeover)
}

// ClaimMember implements [MemberClaimer].
func (l *Redis) ClaimMember(ctx context.Context, key, holder, member string, lease time.Duration, takeover bool) (Claim, State, error) {
	rk, args := l.ClaimArgs(key, holder, member, lease, takeover)
	v, err := claimScript.Run(ctx, l.rdb, []string{rk}, args...).Slice()
	if err != nil {
		return 0, State{}, fmt.Errorf("%w: claim %s: %w", ErrUnavailable, key, err)
	}
	return ParseClaim(key, v)
}

// ClaimArgs returns the Redis key of ledger key k and the arguments of
// ledger_claim after it ([ClaimLua]: holder, lease ms, takeover, ttl ms,
// done ttl ms, member), for a script composed from [ClaimLua]. member is
// "" but for a pool message's request ([MemberClaimer]).
func (l *Redis) ClaimArgs(key, holder, member string, lease time.Duration, takeover bool) (redisKey string, args []any) {
	tk := "0"
	if takeover {
		tk = "1"
	}
	return l.Key(key), []any{holder, max(lease.Milliseconds(), 1), tk, l.ttl.Milliseconds(), max(l.doneTTL.Milliseconds(), 1), member}
}

// ParseClaim reads ledger_claim's answer ([ClaimLua]) for key: {code,
// entry, time in ms}. The lease in the state is converted to this
// process's clock. Errors wrap [ErrUnavailable].
func ParseClaim(key string, v []any) (Claim, State, error) {
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

// ReleaseArgs returns the arguments of ledger_record ([RecordLua]) after
// the key that release holder's in-flight mark, for a script composed
// from [RecordLua]: holder, "release", "-", ttl ms, "0".
func (l *Redis) ReleaseArgs(holder string) []any {
	return []any{holder, "release", "-", l.ttl.Milliseconds(), "0"}
}

// Client returns the Redis client the ledger uses.
func (l *Redis) Client() redis.Cmdable { return l.rdb }

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
	s.Member = m[fMember]
	if ms, err := strconv.ParseInt(m[fUntil], 10, 64); err == nil {
		s.HeldUntil = time.UnixMilli(ms)
	}
	return s
}
