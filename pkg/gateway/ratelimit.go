package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultLimiterPrefix is the Redis key prefix of a [Limiter] when none is
// given: botrelay's.
const DefaultLimiterPrefix = "botrelay"

// quotaWindow is the rolling window of [Token.MaxMessagesPerMinute],
// counted in quotaBuckets buckets.
const (
	quotaWindow  = time.Minute
	quotaBuckets = 60
)

// Limiter enforces the tokens' rates and message quotas in Redis, so every
// gateway replica sharing the Redis (and prefix) shares each token's
// budget. Each decision is one EVALSHA of a Lua script. The times come from
// the gateway's clock (Options.Now), so replicas' clocks should agree
// (NTP); tests move the clock instead of sleeping. It is safe for
// concurrent use.
//
// Keys, for token name N and prefix P (sharing the hash tag {N}):
//
//   - P:gw:{N}:rate  hash {t: tokens left, ts: last refill in ms}
//   - P:gw:{N}:quota hash {bucket number: messages stored in it}
//
// Both expire when the token is idle.
type Limiter struct {
	rdb    redis.Scripter
	prefix string
}

// NewLimiter returns a [Limiter] on rdb (a *redis.Client or a
// *redis.ClusterClient) with keys under prefix ("" means
// [DefaultLimiterPrefix]).
func NewLimiter(rdb redis.Scripter, prefix string) (*Limiter, error) {
	if rdb == nil {
		return nil, fmt.Errorf("%w: nil redis client", ErrInvalidOption)
	}
	if prefix == "" {
		prefix = DefaultLimiterPrefix
	}
	return &Limiter{rdb: rdb, prefix: prefix}, nil
}

// rateScript takes one request from a token bucket.
//
// KEYS[1] the bucket hash. ARGV[1] now (ms), ARGV[2] rate (tokens per
// second), ARGV[3] burst. Returns 0 when granted, else the wait in ms until
// a token is there.
var rateScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(v[1])
local ts = tonumber(v[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
  ts = now
end
if tokens >= 1 then
  tokens = tokens - 1
  redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(ts))
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
  return 0
end
return math.max(1, math.ceil((1 - tokens) * 1000 / rate))
`)

// quotaScript reserves n messages in a rolling window counted in buckets.
//
// KEYS[1] the bucket hash. ARGV[1] now (ms), ARGV[2] n, ARGV[3] limit,
// ARGV[4] window (ms), ARGV[5] bucket length (ms). Returns 0 when
// reserved, -1 when n exceeds the limit by itself, else the wait in ms
// until enough buckets have left the window.
var quotaScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local win = tonumber(ARGV[4])
local bms = tonumber(ARGV[5])
if n > limit then return -1 end
local nb = math.floor(win / bms)
local cur = math.floor(now / bms)
local first = cur - nb + 1
local all = redis.call('HGETALL', KEYS[1])
local used = 0
local live = {}
for i = 1, #all, 2 do
  local b = tonumber(all[i])
  local c = tonumber(all[i + 1])
  if b < first then
    redis.call('HDEL', KEYS[1], all[i])
  else
    used = used + c
    table.insert(live, {b, c})
  end
end
if used + n <= limit then
  redis.call('HINCRBY', KEYS[1], tostring(cur), n)
  redis.call('PEXPIRE', KEYS[1], win + bms)
  return 0
end
table.sort(live, function(x, y) return x[1] < y[1] end)
local need = used + n - limit
local freed = 0
for _, bc in ipairs(live) do
  freed = freed + bc[2]
  if freed >= need then
    return math.max(1, (bc[1] + nb) * bms - now)
  end
end
return win
`)

// errQuotaTooSmall is allowMessages' answer for a request holding more
// messages than the token may store in a whole window.
var errQuotaTooSmall = errors.New("more messages than the token's quota per minute")

func (l *Limiter) key(t *Token, kind string) string {
	return l.prefix + ":gw:{" + t.Name + "}:" + kind
}

// allowRequest takes one request from t's bucket: 0 when granted, else how
// long to wait.
func (l *Limiter) allowRequest(ctx context.Context, t *Token, now time.Time) (time.Duration, error) {
	if t.Rate <= 0 {
		return 0, nil
	}
	ms, err := rateScript.Run(ctx, l.rdb, []string{l.key(t, "rate")},
		now.UnixMilli(), strconv.FormatFloat(t.Rate, 'g', -1, 64), t.burst()).Int64()
	if err != nil {
		return 0, fmt.Errorf("gateway: rate of token %s: %w", t.Name, err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// allowMessages reserves n messages of t's quota: 0 when reserved, else
// how long to wait; errQuotaTooSmall when n alone is over the quota.
func (l *Limiter) allowMessages(ctx context.Context, t *Token, n int, now time.Time) (time.Duration, error) {
	if t.MaxMessagesPerMinute <= 0 {
		return 0, nil
	}
	ms, err := quotaScript.Run(ctx, l.rdb, []string{l.key(t, "quota")},
		now.UnixMilli(), n, t.MaxMessagesPerMinute, quotaWindow.Milliseconds(), (quotaWindow / quotaBuckets).Milliseconds()).Int64()
	switch {
	case err != nil:
		return 0, fmt.Errorf("gateway: quota of token %s: %w", t.Name, err)
	case ms < 0:
		return 0, errQuotaTooSmall
	}
	return time.Duration(ms) * time.Millisecond, nil
}
