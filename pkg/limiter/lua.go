package limiter

import "github.com/redis/go-redis/v9"

// ReserveLua is the Lua source of one decision for one robot, for scripts
// composed from it (pkg/gate runs it with the ledger's claim in one
// EVALSHA). It defines
//
//	local function limiter_reserve(kw, kc, ke, a, t)
//
// where kw, kc and ke are the keys KEYS[1..3] below, a is a table laid out
// as ARGV below, and t is the answer of redis.call('TIME'); it returns what
// the script returns. reserveScript is ReserveLua called with KEYS and ARGV.
//
// Times are microseconds of the Redis server's clock (TIME), so the clocks of
// the workers do not matter. Redis >= 5 replicates scripts by effects, so
// reading TIME before writing is allowed.
//
//   - KEYS[1]: the robot's window log, a sorted set; score = grant time (µs),
//     member = "<grant time>:<token>".
//   - KEYS[2]: the robot's cool-off, a string holding its end (µs).
//   - ARGV[1]: Max, the grants allowed in any rolling span.
//   - ARGV[2]: span = Window + Margin, in µs.
//   - ARGV[3]: span in ms, rounded up: the TTL given to KEYS[1] on a grant.
//   - ARGV[4]: token, a random string making the member unique.
//   - KEYS[3]: the epoch key of the restart guard,
//     "<µs>:<run_id>:<evicted_keys>": when this Redis state began, on which
//     server run (INFO server) and with how many keys evicted so far (INFO
//     stats); absent when ARGV[5] is "0".
//   - ARGV[5]: "0" guard off, "1" guard on with a permanent epoch key,
//     otherwise guard on and the epoch key's TTL in ms (per-robot epochs).
//   - ARGV[6]: the guard's quiet time in µs, at least span: how long after
//     the state began nothing is granted.
//   - ARGV[7], ARGV[8], …: further windows as pairs (Max, span in µs),
//     each no longer than ARGV[2]'s; none for a single window.
//   - Returns {allowed, retry_after_us, cooling, now_us}: {1, 0, 0, now} when
//     granted (recorded at now); {0, left, 1, now} when cooling off for left
//     more µs; {0, retry, 0, now} when the window is full and a slot frees in
//     retry µs. A cool-off value that is not a number makes the script fail
//     (fail closed).
//
// A grant at t occupies [t, t+span): entries with score <= now-span are
// dropped, so at most Max grants fall in any half-open span. Every further
// window counts the grants of the same log within its own span (the
// newest ones): a grant is made only when every window has room, so each
// window is exact on its own; otherwise the longest wait of the full
// windows is answered. Order: the cool-off, then the windows, then the
// restart guard, so that a decision the windows deny skips the guard's
// INFO calls.
const ReserveLua = `
local function limiter_reserve(kw, kc, ke, a, t)
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

  local cool = redis.call('GET', kc)
  if cool then
    local left = tonumber(cool) - now
    if left > 0 then
      return {0, left, 1, now}
    end
  end

  local max = tonumber(a[1])
  local span = tonumber(a[2])

  redis.call('ZREMRANGEBYSCORE', kw, '-inf', string.format('%.0f', now - span))
  local n = redis.call('ZCARD', kw)
  -- The grants within a window are the newest c of the log; when c >= m,
  -- the slot frees when the (c-m+1)-th oldest of them, index n-m of the
  -- log, leaves the window. The longest wait of the full windows is answered.
  local retry = 0
  local function check(m, sp, c)
    if c >= m then
      local e = redis.call('ZRANGE', kw, n - m, n - m, 'WITHSCORES')
      local r = tonumber(e[2]) + sp - now
      if r < 1 then
        r = 1
      end
      if r > retry then
        retry = r
      end
    end
  end
  check(max, span, n)
  for i = 7, #a, 2 do
    local sp = tonumber(a[i + 1])
    check(tonumber(a[i]), sp, redis.call('ZCOUNT', kw, string.format('(%.0f', now - sp), '+inf'))
  end
  if retry > 0 then
    return {0, retry, 0, now}
  end

  -- Restart guard, asked only when the window has room (a full window denies
  -- whatever the guard says, and its two INFO calls are the dearest part of
  -- the script). The epoch is "<µs>:<run_id>:<evicted_keys>", when this
  -- state began, on which server run, with how many keys evicted. A missing
  -- epoch means the state is new (first start, or a Redis that restarted
  -- empty); another run_id means a server that restarted from a snapshot or a
  -- promoted replica, which may lack the latest grants; another evicted_keys
  -- count means Redis evicted keys (a maxmemory-policy other than noeviction),
  -- perhaps windows or cool-offs. Either way, grant nothing for the quiet time
  -- from now. So does an epoch with a run_id but no eviction count, written
  -- by a version that keyed robots by name: after that upgrade, the windows
  -- and cool-offs kept under the names are not found under the identities.
  -- An epoch without a run_id (set by an operator) is adopted as is.
  if a[5] ~= '0' then
    local rid = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
    local evicted = string.match(redis.call('INFO', 'stats'), 'evicted_keys:(%d+)') or ''
    local v = redis.call('GET', ke)
    local ep, erid, eev
    if v then
      ep, erid, eev = string.match(v, '^(%d+):?(%x*):?(%d*)$')
      ep = tonumber(ep)
    end
    if not ep or (erid ~= '' and (erid ~= rid or eev ~= evicted)) then
      ep = now
      redis.call('SET', ke, string.format('%.0f:%s:%s', now, rid, evicted))
    elseif erid == '' then
      redis.call('SET', ke, string.format('%.0f:%s:%s', ep, rid, evicted))
    end
    if a[5] ~= '1' then
      redis.call('PEXPIRE', ke, a[5])
    end
    local quiet = tonumber(a[6])
    if now - ep < quiet then
      return {0, ep + quiet - now, 0, now}
    end
  end
  redis.call('ZADD', kw, string.format('%.0f', now), string.format('%.0f:%s', now, a[4]))
  redis.call('PEXPIRE', kw, a[3])
  return {1, 0, 0, now}
end
`

// reserveScript runs [ReserveLua] with KEYS and ARGV.
var reserveScript = redis.NewScript(ReserveLua + `
return limiter_reserve(KEYS[1], KEYS[2], KEYS[3], ARGV, redis.call('TIME'))
`)

// coolOffScript starts or extends a robot's cool-off, never shortening one.
//
//   - KEYS[1]: the robot's cool-off, a string holding its end (µs of the
//     Redis clock), expiring with it.
//   - ARGV[1]: the duration in µs.
//   - ARGV[2]: the duration in ms, rounded up, plus one: the key's TTL.
//   - Returns 1 when the cool-off was set or extended, 0 when an existing one
//     already lasts at least as long.
var coolOffScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stop = now + tonumber(ARGV[1])
local cur = redis.call('GET', KEYS[1])
cur = cur and tonumber(cur)
if cur and cur >= stop then
  return 0
end
redis.call('SET', KEYS[1], string.format('%.0f', stop), 'PX', ARGV[2])
return 1
`)
