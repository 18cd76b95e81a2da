package gate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
)

// ErrSplit is returned, before anything is sent, for a request whose
// ledger entry and limiter keys would live in different slots of a Redis
// Cluster: make the two calls instead.
var ErrSplit = errors.New("gate: ledger entry and limiter keys in different cluster slots")

// Request is one claim and decision.
type Request struct {
	// Key, Holder, Lease and Takeover are [ledger.Ledger.Claim]'s arguments;
	// Member is [ledger.MemberClaimer.ClaimMember]'s (empty but for a pool
	// message's request).
	Key      string
	Holder   string
	Member   string
	Lease    time.Duration
	Takeover bool
	// Robot and Limit are [limiter.Limiter.Reserve]'s arguments.
	Robot string
	Limit limiter.Limit
	// HoldMax is the longest denial waited out holding the message: a
	// denial for at most HoldMax releases the claim in the same script
	// ([Result.Released]); a longer one keeps it.
	HoldMax time.Duration
	// MaxThrottles, when positive, bounds the entry's throttles: with as
	// many or more recorded, the claim is made without a reservation.
	MaxThrottles int
	// MinWaits bounds the entry's waits from below: with fewer recorded,
	// the claim is made without a reservation.
	MinWaits int
}

// Result is the answer to [Redis.ClaimReserve].
type Result struct {
	// Claim and State are [ledger.Ledger.Claim]'s answer.
	Claim ledger.Claim
	State ledger.State
	// Reserved is true when the limiter decided (the claim was granted and
	// the entry within the request's bounds, no failed attempt recorded);
	// Decision is then its answer.
	Reserved bool
	Decision limiter.Decision
	// Released is true when the decision denied for at most HoldMax and
	// the claim was released in the same script.
	Released bool
}

// Redis runs the combined script on the client a [ledger.Redis] and a
// [limiter.Redis] share. Safe for concurrent use.
type Redis struct {
	led     *ledger.Redis
	lim     *limiter.Redis
	rdb     redis.Scripter
	cluster bool
}

// New returns the combined gate of led and lim when both are Redis on the
// same client, nil otherwise (make the two calls then). It does not
// contact Redis.
func New(led ledger.Ledger, lim limiter.Limiter) *Redis {
	l, ok := led.(*ledger.Redis)
	if !ok || l == nil {
		return nil
	}
	r, ok := lim.(*limiter.Redis)
	if !ok || r == nil {
		return nil
	}
	lc, ok := l.Client().(redis.Scripter)
	if !ok || lc == nil || lc != r.Client() {
		return nil
	}
	_, cluster := lc.(*redis.ClusterClient)
	return &Redis{led: l, lim: r, rdb: lc, cluster: cluster}
}

// script is the claim and the decision, composed from the two packages'
// sources.
//
//   - KEYS[1]: the ledger entry; KEYS[2], KEYS[3] and, with the restart
//     guard, KEYS[4]: the limiter's window, cool-off and epoch.
//   - ARGV[1..6]: ledger_claim's holder, lease ms, takeover, ttl ms, done
//     ttl ms, member.
//   - ARGV[7]: HoldMax in µs: a denial waiting at most this releases the
//     claim (ledger_record "release").
//   - ARGV[8]: reserve only with fewer throttles recorded than this.
//   - ARGV[9]: reserve only with at least this many waits recorded.
//   - ARGV[10..]: limiter_reserve's arguments.
//   - Returns {code, entry, now ms} when no reservation was made, and
//     {code, entry, now ms, allowed, retry µs, cooling, now µs, released}
//     when the limiter decided.
var script = redis.NewScript(ledger.ClaimLua + ledger.RecordLua + limiter.ReserveLua + `
local t = redis.call('TIME')
local c, e = ledger_claim(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], t)
if c[1] ~= 1 then return c end
if tonumber(e['f'] or '0') > 0 or tonumber(e['t'] or '0') >= tonumber(ARGV[8]) or tonumber(e['w'] or '0') < tonumber(ARGV[9]) then
  return c
end
local ra = {}
for i = 10, #ARGV do ra[#ra + 1] = ARGV[i] end
local d = limiter_reserve(KEYS[2], KEYS[3], KEYS[4], ra, t)
local released = 0
if d[1] == 0 and d[2] <= tonumber(ARGV[7]) then
  ledger_record(KEYS[1], ARGV[1], 'release', '-', ARGV[4], '0')
  released = 1
end
return {c[1], c[2], c[3], d[1], d[2], d[3], d[4], released}
`)

// Load loads the script into Redis's script cache (every shard of a
// cluster), so that even the first call is one EVALSHA. Optional.
func (g *Redis) Load(ctx context.Context) error {
	if err := script.Load(ctx, g.rdb).Err(); err != nil {
		return fmt.Errorf("gate: load script: %w: %w", ledger.ErrUnavailable, err)
	}
	return nil
}

// ClaimReserve claims req.Key and, when the claim is granted, decides
// req.Robot's slot, in one round trip (see the package doc). Errors:
// [ErrSplit] (nothing sent); the limiter's invalid-argument errors
// (nothing sent); otherwise Redis's error wrapping both
// [ledger.ErrUnavailable] and [limiter.ErrUnavailable]: the script may or
// may not have run, and nothing was granted that the caller may use.
func (g *Redis) ClaimReserve(ctx context.Context, req Request) (Result, error) {
	rk, cargs := g.led.ClaimArgs(req.Key, req.Holder, req.Member, req.Lease, req.Takeover)
	lkeys, largs, err := g.lim.ReserveArgs(req.Robot, req.Limit)
	if err != nil {
		return Result{}, err
	}
	if g.cluster && !oneSlot(rk, lkeys) {
		return Result{}, fmt.Errorf("%w: %s and %s", ErrSplit, rk, lkeys[0])
	}
	maxT := int64(math.MaxInt64)
	if req.MaxThrottles > 0 {
		maxT = int64(req.MaxThrottles)
	}
	keys := append([]string{rk}, lkeys...)
	args := append(cargs, int64(max(req.HoldMax, 0)/time.Microsecond), maxT, req.MinWaits)
	args = append(args, largs...)
	v, err := script.Run(ctx, g.rdb, keys, args...).Slice()
	if err != nil {
		return Result{}, fmt.Errorf("gate: claim and reserve %s: %w: %w: %w", req.Key, ledger.ErrUnavailable, limiter.ErrUnavailable, err)
	}
	if len(v) != 3 && len(v) != 8 {
		return Result{}, fmt.Errorf("gate: claim and reserve %s: %w: %w: script returned %d values", req.Key, ledger.ErrUnavailable, limiter.ErrUnavailable, len(v))
	}
	c, st, err := ledger.ParseClaim(req.Key, v[:3])
	if err != nil {
		return Result{}, err
	}
	res := Result{Claim: c, State: st}
	if len(v) == 3 {
		return res, nil
	}
	vals := make([]int64, 5)
	for i := range vals {
		n, ok := v[3+i].(int64)
		if !ok {
			return Result{}, fmt.Errorf("gate: claim and reserve %s: %w: %w: value %d is %T", req.Key, ledger.ErrUnavailable, limiter.ErrUnavailable, 3+i, v[3+i])
		}
		vals[i] = n
	}
	d, err := g.lim.ParseDecision(req.Robot, vals[:4])
	if err != nil {
		return Result{}, err
	}
	res.Reserved, res.Decision, res.Released = true, d, vals[4] == 1
	return res, nil
}

// Fallback reports whether err, from [Redis.ClaimReserve], means the
// script did not run, or failed, for a reason of the request's keys or
// arguments rather than Redis being unreachable: [ErrSplit], an invalid
// robot or limit, or an error Redis answered (such as WRONGTYPE). The
// caller then makes the two calls, which tell which part fails. An out of
// memory answer is such an error too: check for it first.
func Fallback(err error) bool {
	if err == nil {
		return false
	}
	var re redis.Error
	return errors.Is(err, ErrSplit) || errors.Is(err, limiter.ErrInvalidRobot) || errors.Is(err, limiter.ErrInvalidLimit) ||
		errors.As(err, &re)
}

// oneSlot reports whether the ledger key rk and the limiter's keys share
// one hash tag (so one cluster slot).
func oneSlot(rk string, lkeys []string) bool {
	t := hashTag(rk)
	for _, k := range lkeys {
		if hashTag(k) != t {
			return false
		}
	}
	return true
}

// hashTag returns the part of key Redis Cluster hashes: the text between
// the first '{' and the first '}' after it when not empty, else the whole
// key.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}
