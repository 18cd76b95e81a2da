package gate_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/gate"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
)

// stores returns a Redis ledger and limiter on one new client, under a
// prefix of the test's own, with the restart guard armed (its epoch set
// long ago).
func stores(t *testing.T) (*redis.Client, *ledger.Redis, *limiter.Redis) {
	t.Helper()
	return storesB(t)
}

// storesB is [stores] for a benchmark too.
func storesB(t testing.TB) (*redis.Client, *ledger.Redis, *limiter.Redis) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	require.NoError(t, rdb.Set(context.Background(), prefix+":epoch", "0", 0).Err())
	led := ledger.NewRedis(rdb, prefix, time.Hour)
	lim, err := limiter.NewRedis(rdb, limiter.WithPrefix(prefix))
	require.NoError(t, err)
	return rdb, led, lim
}

// twoCalls is what the combined script must equal: the claim, then (when
// granted and within the bounds) the decision, then for a denial of at
// most HoldMax the release.
func twoCalls(ctx context.Context, led ledger.Ledger, lim limiter.Limiter, req gate.Request) (gate.Result, error) {
	c, st, err := led.Claim(ctx, req.Key, req.Holder, req.Lease, req.Takeover)
	if err != nil {
		return gate.Result{}, err
	}
	res := gate.Result{Claim: c, State: st}
	if c != ledger.Claimed || st.Failures > 0 || (req.MaxThrottles > 0 && st.Throttles >= req.MaxThrottles) || st.Waits < req.MinWaits {
		return res, nil
	}
	d, err := lim.Reserve(ctx, req.Robot, req.Limit)
	if err != nil {
		return gate.Result{}, err
	}
	res.Reserved, res.Decision = true, d
	if !d.Allowed && d.RetryAfter <= req.HoldMax {
		res.Released = true
		return res, led.Release(ctx, req.Key, req.Holder)
	}
	return res, nil
}

// TestClaimReserveTable holds the combined script to the two calls it
// replaces, case by case against real Redis: each case runs once through
// the script and once through the two calls, on keys of its own, and
// both must give the wanted answer and leave the same ledger entry and
// limiter state.
func TestClaimReserveTable(t *testing.T) {
	ctx := context.Background()
	one := limiter.Limit{Max: 1, Window: time.Minute}
	t0 := time.UnixMilli(1_700_000_000_000)

	tests := []struct {
		name string
		// setup prepares the message's entry and the robot's limiter.
		setup func(t *testing.T, led *ledger.Redis, lim *limiter.Redis, key, robot string)
		req   func(r *gate.Request)
		// want: the claim, whether reserved, allowed, released, cooling;
		// the holder left on the entry; the grants in the robot's window
		// afterwards (the setup's and the call's).
		claim                                ledger.Claim
		reserved, allowed, released, cooling bool
		holder                               string
		grants                               int
		// retry bounds the decision's RetryAfter when denied.
		retryMin, retryMax time.Duration
	}{
		{name: "claimed and granted", claim: ledger.Claimed, reserved: true, allowed: true, holder: "w1", grants: 1},
		{
			name: "claimed, denied short: released",
			setup: func(t *testing.T, _ *ledger.Redis, lim *limiter.Redis, _, robot string) {
				d, err := lim.Reserve(ctx, robot, one)
				require.NoError(t, err)
				require.True(t, d.Allowed)
			},
			req:   func(r *gate.Request) { r.HoldMax = 2 * time.Minute },
			claim: ledger.Claimed, reserved: true, released: true, holder: "", grants: 1,
			retryMin: 58 * time.Second, retryMax: time.Minute,
		},
		{
			name: "claimed, denied long: kept",
			setup: func(t *testing.T, _ *ledger.Redis, lim *limiter.Redis, _, robot string) {
				_, err := lim.Reserve(ctx, robot, one)
				require.NoError(t, err)
			},
			req:   func(r *gate.Request) { r.HoldMax = time.Second },
			claim: ledger.Claimed, reserved: true, holder: "w1", grants: 1,
			retryMin: 58 * time.Second, retryMax: time.Minute,
		},
		{
			name: "cooling off",
			setup: func(t *testing.T, _ *ledger.Redis, lim *limiter.Redis, _, robot string) {
				require.NoError(t, lim.CoolOff(ctx, robot, 10*time.Minute))
			},
			claim: ledger.Claimed, reserved: true, cooling: true, holder: "w1",
			retryMin: 9 * time.Minute, retryMax: 10 * time.Minute,
		},
		{
			name: "already delivered",
			setup: func(t *testing.T, led *ledger.Redis, _ *limiter.Redis, key, _ string) {
				require.NoError(t, led.MarkDelivered(ctx, key, "w0", "m-1"))
			},
			claim: ledger.AlreadyDelivered,
		},
		{
			name: "already permanent",
			setup: func(t *testing.T, led *ledger.Redis, _ *limiter.Redis, key, _ string) {
				require.NoError(t, led.MarkPermanent(ctx, key, "w0", "gone"))
			},
			claim: ledger.AlreadyPermanent,
		},
		{
			name: "held by another worker",
			setup: func(t *testing.T, led *ledger.Redis, _ *limiter.Redis, key, _ string) {
				c, _, err := led.Claim(ctx, key, "w2", time.Minute, false)
				require.NoError(t, err)
				require.Equal(t, ledger.Claimed, c)
			},
			claim: ledger.HeldByOther, holder: "w2",
		},
		{
			name: "unknown outcome",
			setup: func(t *testing.T, led *ledger.Redis, _ *limiter.Redis, key, _ string) {
				_, _, err := led.Claim(ctx, key, "w2", time.Millisecond, false)
				require.NoError(t, err)
				time.Sleep(5 * time.Millisecond)
			},
			claim: ledger.UnknownOutcome, holder: "w2",
		},
		{
			name: "unknown outcome taken over",
			setup: func(t *testing.T, led *ledger.Redis, _ *limiter.Redis, key, _ string) {
				_, _, err := led.Claim(ctx, key, "w2", time.Millisecond, false)
				require.NoError(t, err)
				time.Sleep(5 * time.Millisecond)
			},
			req:   func(r *gate.Request) { r.Takeover = true },
			claim: ledger.Claimed, reserved: true, allowed: true, holder: "w1", grants: 1,
		},
		{
			name: "a failed attempt recorded: claimed, not reserved",
			setup: func(t *testing.T, led *ledger.Redis, _ *limiter.Redis, key, _ string) {
				_, err := led.RecordFailure(ctx, key, "w0", t0)
				require.NoError(t, err)
			},
			claim: ledger.Claimed, holder: "w1",
		},
		{
			name: "throttles at the bound: claimed, not reserved",
			setup: func(t *testing.T, led *ledger.Redis, _ *limiter.Redis, key, _ string) {
				for range 2 {
					_, err := led.RecordThrottle(ctx, key, "w0", time.Second)
					require.NoError(t, err)
				}
			},
			req:   func(r *gate.Request) { r.MaxThrottles = 2 },
			claim: ledger.Claimed, holder: "w1",
		},
		{
			name: "throttles under the bound: reserved",
			setup: func(t *testing.T, led *ledger.Redis, _ *limiter.Redis, key, _ string) {
				_, err := led.RecordThrottle(ctx, key, "w0", time.Second)
				require.NoError(t, err)
			},
			req:   func(r *gate.Request) { r.MaxThrottles = 2 },
			claim: ledger.Claimed, reserved: true, allowed: true, holder: "w1", grants: 1,
		},
		{
			name:  "fewer waits than the bound: claimed, not reserved",
			req:   func(r *gate.Request) { r.MinWaits = 1 },
			claim: ledger.Claimed, holder: "w1",
		},
		{
			name: "waits at the bound: reserved",
			setup: func(t *testing.T, led *ledger.Redis, _ *limiter.Redis, key, _ string) {
				_, err := led.RecordWait(ctx, key, "w0", time.Second)
				require.NoError(t, err)
			},
			req:   func(r *gate.Request) { r.MinWaits = 1 },
			claim: ledger.Claimed, reserved: true, allowed: true, holder: "w1", grants: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			type outcome struct {
				res    gate.Result
				entry  ledger.State
				grants int
			}
			run := func(t *testing.T, combined bool) outcome {
				_, led, lim := stores(t)
				key, robot := "r1/"+testenv.Unique(), "team-"+testenv.Unique()
				if tc.setup != nil {
					tc.setup(t, led, lim, key, robot)
				}
				req := gate.Request{Key: key, Holder: "w1", Lease: time.Minute, Robot: robot, Limit: one, HoldMax: 10 * time.Second}
				if tc.req != nil {
					tc.req(&req)
				}
				var (
					res gate.Result
					err error
				)
				if combined {
					g := gate.New(led, lim)
					require.NotNil(t, g)
					res, err = g.ClaimReserve(ctx, req)
				} else {
					res, err = twoCalls(ctx, led, lim, req)
				}
				require.NoError(t, err)

				require.Equal(t, tc.claim, res.Claim, "claim")
				require.Equal(t, tc.reserved, res.Reserved, "reserved")
				require.Equal(t, tc.allowed, res.Decision.Allowed, "allowed")
				require.Equal(t, tc.released, res.Released, "released")
				require.Equal(t, tc.cooling, res.Decision.CoolingOff, "cooling off")
				if tc.reserved && !tc.allowed {
					require.GreaterOrEqual(t, res.Decision.RetryAfter, tc.retryMin)
					require.LessOrEqual(t, res.Decision.RetryAfter, tc.retryMax)
				}
				entry, err := led.Get(ctx, key)
				require.NoError(t, err)
				require.Equal(t, tc.holder, entry.Holder, "holder left on the entry")

				// The grants in the robot's window: the setup's and the call's.
				ls, err := lim.Inspect(ctx, robot, one)
				require.NoError(t, err)
				require.Equal(t, tc.grants, ls.InWindow, "grants in the window")
				return outcome{res: res, entry: entry, grants: ls.InWindow}
			}
			got := run(t, true)
			want := run(t, false)
			// Same answers and the same entry, but for the times.
			for _, o := range []*outcome{&got, &want} {
				o.res.State.HeldUntil, o.entry.HeldUntil = time.Time{}, time.Time{}
				o.res.Decision.RetryAfter = o.res.Decision.RetryAfter.Round(time.Second)
			}
			require.Equal(t, want, got, "the script answers as the two calls")
		})
	}
}

// A delivered entry that ClaimReserve finds (its message read again: a
// delete that failed) lives the ledger's done TTL from then, as with
// ledger.Claim: forgotten while its message is still in the stream, the
// message would be posted again.
func TestClaimReserveKeepsADeliveredEntry(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	require.NoError(t, rdb.Set(ctx, prefix+":epoch", "0", 0).Err())
	led := ledger.NewRedis(rdb, prefix, time.Hour).WithDoneTTL(2 * time.Minute)
	lim, err := limiter.NewRedis(rdb, limiter.WithPrefix(prefix))
	require.NoError(t, err)
	g := gate.New(led, lim)
	require.NotNil(t, g)
	require.NoError(t, led.MarkDelivered(ctx, "r/m", "w0", ""))
	require.NoError(t, rdb.PExpire(ctx, led.Key("r/m"), 3*time.Second).Err())
	res, err := g.ClaimReserve(ctx, gate.Request{Key: "r/m", Holder: "w1", Lease: time.Minute, Robot: "r",
		Limit: limiter.Limit{Max: 1, Window: time.Minute}, MaxThrottles: 5})
	require.NoError(t, err)
	require.Equal(t, ledger.AlreadyDelivered, res.Claim)
	require.False(t, res.Reserved, "no slot for a delivered message")
	ttl, err := rdb.PTTL(ctx, led.Key("r/m")).Result()
	require.NoError(t, err)
	require.InDelta(t, float64(2*time.Minute), float64(ttl), float64(5*time.Second))
}
