package limiter

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// inspectEnv is one backend for the Inspect table: a limiter that can both
// reserve and inspect, and a way to let time pass.
type inspectEnv struct {
	l interface {
		Limiter
		Inspector
	}
	pass func(time.Duration)
}

func inspectBackends() []struct {
	name  string
	setup func(t *testing.T) inspectEnv
} {
	return []struct {
		name  string
		setup func(t *testing.T) inspectEnv
	}{
		{name: "memory", setup: func(t *testing.T) inspectEnv {
			c := newFakeClock()
			return inspectEnv{l: NewMemory(c.Now), pass: c.Advance}
		}},
		{name: "redis", setup: func(t *testing.T) inspectEnv {
			return inspectEnv{l: newTestRedis(t, testPrefix(t)), pass: time.Sleep}
		}},
	}
}

// TestInspect runs the same behaviour table against both backends (the
// Redis prefix has an armed epoch: no restart-guard quiet).
func TestInspect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lim := Limit{Max: 5, Window: 20 * time.Second, Margin: time.Second}
	grant := func(t *testing.T, l Limiter, robot string, n int) {
		t.Helper()
		for i := range n {
			d, err := l.Reserve(ctx, robot, lim)
			require.NoError(t, err)
			require.True(t, d.Allowed, "grant %d", i+1)
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, e inspectEnv)
	}{
		{name: "unknown robot: nothing counted, slot free", run: func(t *testing.T, e inspectEnv) {
			s, err := e.l.Inspect(ctx, "nobody", lim)
			require.NoError(t, err)
			require.Equal(t, State{}, s)
		}},
		{name: "3 of 5 granted: a slot is free", run: func(t *testing.T, e inspectEnv) {
			grant(t, e.l, "r", 3)
			s, err := e.l.Inspect(ctx, "r", lim)
			require.NoError(t, err)
			require.Less(t, s.LastGrantAgo, time.Second, "the newest grant was a moment ago")
			s.LastGrantAgo = 0
			require.Equal(t, State{InWindow: 3}, s)
			// Inspect recorded nothing: two more grants still fit.
			grant(t, e.l, "r", 2)
		}},
		{name: "LastGrantAgo: the newest grant's age", run: func(t *testing.T, e inspectEnv) {
			grant(t, e.l, "r", 1)
			e.pass(300 * time.Millisecond)
			grant(t, e.l, "r", 1)
			start := time.Now()
			e.pass(200 * time.Millisecond)
			s, err := e.l.Inspect(ctx, "r", lim)
			require.NoError(t, err)
			require.Equal(t, 2, s.InWindow)
			// The second grant, not the first (which is 500ms old).
			require.GreaterOrEqual(t, s.LastGrantAgo, 200*time.Millisecond)
			require.LessOrEqual(t, s.LastGrantAgo, 200*time.Millisecond+time.Since(start))
		}},
		{name: "LastGrantAgo: grants that left the window do not count", run: func(t *testing.T, e inspectEnv) {
			short := Limit{Max: 2, Window: 200 * time.Millisecond}
			d, err := e.l.Reserve(ctx, "r", short)
			require.NoError(t, err)
			require.True(t, d.Allowed)
			e.pass(250 * time.Millisecond)
			s, err := e.l.Inspect(ctx, "r", short)
			require.NoError(t, err)
			require.Equal(t, State{}, s)
		}},
		{name: "full window: NextSlot is Reserve's RetryAfter", run: func(t *testing.T, e inspectEnv) {
			grant(t, e.l, "r", 5)
			s, err := e.l.Inspect(ctx, "r", lim)
			require.NoError(t, err)
			d, err := e.l.Reserve(ctx, "r", lim)
			require.NoError(t, err)
			require.False(t, d.Allowed)
			require.Equal(t, 5, s.InWindow)
			require.Zero(t, s.CoolOffLeft)
			require.Zero(t, s.QuietLeft)
			// Inspect came first: its wait is at most a moment longer.
			require.GreaterOrEqual(t, s.NextSlot, d.RetryAfter)
			require.Less(t, s.NextSlot-d.RetryAfter, time.Second)
			require.LessOrEqual(t, s.NextSlot, lim.Window+lim.Margin)
			require.Equal(t, s.NextSlot, s.WindowLeft, "the window is all that holds it")
		}},
		{name: "a lowered Max: NextSlot waits for the right grant", run: func(t *testing.T, e inspectEnv) {
			grant(t, e.l, "r", 2)
			e.pass(50 * time.Millisecond)
			grant(t, e.l, "r", 2)
			lower := Limit{Max: 2, Window: lim.Window, Margin: lim.Margin}
			s, err := e.l.Inspect(ctx, "r", lower)
			require.NoError(t, err)
			d, err := e.l.Reserve(ctx, "r", lower)
			require.NoError(t, err)
			require.False(t, d.Allowed)
			require.Equal(t, 4, s.InWindow)
			require.GreaterOrEqual(t, s.NextSlot, d.RetryAfter)
			require.Less(t, s.NextSlot-d.RetryAfter, time.Second)
			// Two of the later pair's grants must leave, not the first pair's.
			require.Greater(t, s.NextSlot, lim.Window+lim.Margin-time.Second)
		}},
		{name: "grants leave the window", run: func(t *testing.T, e inspectEnv) {
			short := Limit{Max: 2, Window: 200 * time.Millisecond}
			for range 2 {
				d, err := e.l.Reserve(ctx, "r", short)
				require.NoError(t, err)
				require.True(t, d.Allowed)
			}
			s, err := e.l.Inspect(ctx, "r", short)
			require.NoError(t, err)
			require.Equal(t, 2, s.InWindow)
			require.Positive(t, s.NextSlot)
			e.pass(s.NextSlot)
			s, err = e.l.Inspect(ctx, "r", short)
			require.NoError(t, err)
			require.Less(t, s.InWindow, 2)
			require.Zero(t, s.NextSlot)
		}},
		{name: "cool-off: CoolOffLeft and NextSlot", run: func(t *testing.T, e inspectEnv) {
			grant(t, e.l, "r", 1)
			require.NoError(t, e.l.CoolOff(ctx, "r", 8*time.Minute))
			s, err := e.l.Inspect(ctx, "r", lim)
			require.NoError(t, err)
			require.Equal(t, 1, s.InWindow)
			require.Greater(t, s.CoolOffLeft, 8*time.Minute-time.Second)
			require.LessOrEqual(t, s.CoolOffLeft, 8*time.Minute)
			require.Equal(t, s.CoolOffLeft, s.NextSlot)
			require.Zero(t, s.QuietLeft)
			require.Zero(t, s.WindowLeft, "1 of 5: the window has room")
		}},
	}
	for _, b := range inspectBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					tt.run(t, b.setup(t))
				})
			}
		})
	}
}

func TestInspectInvalidArguments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name  string
		robot string
		lim   Limit
		want  error
	}{
		{name: "zero max", robot: "r", lim: Limit{Window: time.Minute}, want: ErrInvalidLimit},
		{name: "zero window", robot: "r", lim: Limit{Max: 1}, want: ErrInvalidLimit},
		{name: "negative margin", robot: "r", lim: Limit{Max: 1, Window: time.Minute, Margin: -1}, want: ErrInvalidLimit},
		{name: "empty robot", lim: Limit{Max: 1, Window: time.Minute}, want: ErrInvalidRobot},
		{name: "hash tag in robot", robot: "a}b", lim: Limit{Max: 1, Window: time.Minute}, want: ErrInvalidRobot},
	}
	for _, b := range inspectBackends() {
		for _, tt := range tests {
			t.Run(b.name+"/"+tt.name, func(t *testing.T) {
				_, err := b.setup(t).l.Inspect(ctx, tt.robot, tt.lim)
				require.ErrorIs(t, err, tt.want)
			})
		}
	}
}

// snapshot is every key under prefix with its type, value and whether it
// expires: what a write would change.
func snapshot(t *testing.T, rdb *redis.Client, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, prefix+":*").Result()
	require.NoError(t, err)
	sort.Strings(keys)
	out := map[string]string{}
	for _, k := range keys {
		typ := rdb.Type(ctx, k).Val()
		var v string
		switch typ {
		case "string":
			v = rdb.Get(ctx, k).Val()
		case "zset":
			for _, z := range rdb.ZRangeWithScores(ctx, k, 0, -1).Val() {
				v += z.Member.(string) + ";"
			}
		}
		out[k] = typ + "=" + v
	}
	return out
}

// TestRedisInspectWritesNothing: on a fresh prefix (no epoch) Inspect
// reports the whole quiet span but does not start it: the epoch key is not
// created, and no key is added, changed or given a new TTL.
func TestRedisInspectWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lim := Limit{Max: 3, Window: 250 * time.Millisecond, Margin: 50 * time.Millisecond}
	span := lim.Window + lim.Margin

	tests := []struct {
		name string
		opts []Option
		// epoch of the robot under test
		epoch func(l *Redis) string
	}{
		{name: "one epoch per prefix", epoch: func(l *Redis) string { return l.epochKey("r") }},
		{name: "cluster keys", opts: []Option{WithClusterKeys()}, epoch: func(l *Redis) string { return l.epochKey("r") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := freshPrefix(t)
			rdb := newRedisClient(t)
			l, err := NewRedis(rdb, append([]Option{WithPrefix(p)}, tt.opts...)...)
			require.NoError(t, err)

			// Nothing at all under the prefix.
			before := snapshot(t, rdb, p)
			require.Empty(t, before)
			s, err := l.Inspect(ctx, "r", lim)
			require.NoError(t, err)
			require.Equal(t, State{QuietLeft: span, QuietPending: true, NextSlot: span}, s)
			require.EqualValues(t, 0, rdb.Exists(ctx, tt.epoch(l)).Val(), "Inspect must not create the epoch")
			require.Equal(t, before, snapshot(t, rdb, p), "Inspect wrote a key")

			// A cool-off of an unguarded robot (only its cool key exists).
			require.NoError(t, l.CoolOff(ctx, "r", time.Minute))
			before = snapshot(t, rdb, p)
			require.Len(t, before, 1)
			ttl := rdb.PTTL(ctx, l.coolKey("r")).Val()
			s, err = l.Inspect(ctx, "r", lim)
			require.NoError(t, err)
			require.Greater(t, s.CoolOffLeft, 59*time.Second)
			require.Equal(t, span, s.QuietLeft)
			require.True(t, s.QuietPending)
			require.Equal(t, s.CoolOffLeft, s.NextSlot)
			require.Equal(t, before, snapshot(t, rdb, p))
			require.EqualValues(t, 0, rdb.Exists(ctx, tt.epoch(l)).Val())
			require.LessOrEqual(t, rdb.PTTL(ctx, l.coolKey("r")).Val(), ttl, "TTL not refreshed")

			// Reserve starts the quiet span; Inspect then counts it down.
			d, err := l.Reserve(ctx, "other", lim)
			require.NoError(t, err)
			require.False(t, d.Allowed)
			s, err = l.Inspect(ctx, "other", lim)
			require.NoError(t, err)
			require.Positive(t, s.QuietLeft)
			require.False(t, s.QuietPending, "started by the Reserve")
			require.LessOrEqual(t, s.QuietLeft, d.RetryAfter)
			require.Equal(t, s.QuietLeft, s.NextSlot)
			time.Sleep(s.QuietLeft)
			for range lim.Max {
				d, err := l.Reserve(ctx, "other", lim)
				require.NoError(t, err)
				require.True(t, d.Allowed)
			}
			before = snapshot(t, rdb, p)
			wttl := rdb.PTTL(ctx, l.windowKey("other")).Val()
			s, err = l.Inspect(ctx, "other", lim)
			require.NoError(t, err)
			require.Zero(t, s.QuietLeft)
			require.Equal(t, lim.Max, s.InWindow)
			require.Positive(t, s.NextSlot)
			require.Equal(t, before, snapshot(t, rdb, p))
			require.LessOrEqual(t, rdb.PTTL(ctx, l.windowKey("other")).Val(), wttl, "TTL not refreshed")
		})
	}
}

// TestRedisInspectScriptIsReadOnly runs the script with EVAL_RO, which
// Redis (>= 7) refuses for any script that calls a write command, in every
// branch: missing epoch, quiet, cool-off, full window.
func TestRedisInspectScriptIsReadOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := freshPrefix(t)
	rdb := newRedisClient(t)
	l, err := NewRedis(rdb, WithPrefix(p))
	require.NoError(t, err)
	keys := []string{l.windowKey("r"), l.coolKey("r"), l.epochKey("r")}
	eval := func() []int64 {
		t.Helper()
		v, err := inspectScript.EvalRO(ctx, rdb, keys, 2, 60_000_000, "1", 60_000_000).Int64Slice()
		require.NoError(t, err)
		return v
	}
	require.Equal(t, []int64{0, 0, 0, 60_000_000, 1, 0}, eval(), "missing epoch: the whole quiet time, pending, no grant")

	require.NoError(t, rdb.Set(ctx, l.epochKey("r"), "0", 0).Err())
	for _, member := range []string{"a", "b", "c"} {
		z := redis.Z{Score: float64(time.Now().UnixMicro()), Member: member}
		require.NoError(t, rdb.ZAdd(ctx, l.windowKey("r"), z).Err())
	}
	v := eval()
	require.Zero(t, v[3], "quiet span over")
	require.Zero(t, v[4], "the epoch is there: nothing pending")
	require.EqualValues(t, 3, v[0])
	require.Positive(t, v[2], "full window")
	require.GreaterOrEqual(t, v[5], int64(0), "the newest grant's age (members added a moment ago)")
	require.Less(t, v[5], int64(time.Second/time.Microsecond), "the newest grant's age (members added a moment ago)")
	require.NoError(t, l.CoolOff(ctx, "r", time.Minute))
	require.Positive(t, eval()[1], "cool-off")
}

// TestRedisInspectOneRoundTrip: once the script is cached, an Inspect is a
// single request.
func TestRedisInspectOneRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var rt roundTrips
	rdb := newRedisClient(t)
	rdb.AddHook(&rt)
	l, err := NewRedis(rdb, WithPrefix(testPrefix(t)))
	require.NoError(t, err)
	lim := Limit{Max: 2, Window: time.Minute}
	_, err = l.Inspect(ctx, "r", lim) // may load the script
	require.NoError(t, err)
	rt.n.Store(0)
	for range 3 {
		_, err := l.Inspect(ctx, "r", lim)
		require.NoError(t, err)
	}
	require.EqualValues(t, 3, rt.n.Load())
}

func TestRedisInspectGuardOff(t *testing.T) {
	t.Parallel()
	p := freshPrefix(t)
	l, err := NewRedis(newRedisClient(t), WithPrefix(p), WithRestartGuard(false))
	require.NoError(t, err)
	s, err := l.Inspect(context.Background(), "r", Limit{Max: 1, Window: time.Minute})
	require.NoError(t, err)
	require.Equal(t, State{}, s)
}

func TestRedisInspectUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	l, err := NewRedis(rdb)
	require.NoError(t, err)
	_, err = l.Inspect(ctx, "r", Limit{Max: 1, Window: time.Minute})
	require.ErrorIs(t, err, ErrUnavailable)

	// A cool-off this package did not write fails, as Reserve does.
	p := testPrefix(t)
	good := newRedisClient(t)
	l, err = NewRedis(good, WithPrefix(p))
	require.NoError(t, err)
	require.NoError(t, good.Set(ctx, l.coolKey("r"), "banned", time.Minute).Err())
	_, err = l.Inspect(ctx, "r", Limit{Max: 1, Window: time.Minute})
	require.ErrorIs(t, err, ErrUnavailable)
}

// TestMemoryInspectWritesNothing: inspecting an unknown robot creates no
// state, and inspecting a known one records no grant.
func TestMemoryInspectWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newFakeClock()
	m := NewMemory(c.Now)
	lim := Limit{Max: 1, Window: time.Minute}
	for range 3 {
		_, err := m.Inspect(ctx, "ghost", lim)
		require.NoError(t, err)
	}
	require.Zero(t, m.robotCount())

	s, err := m.Inspect(ctx, "r", lim)
	require.NoError(t, err)
	require.Zero(t, s.InWindow)
	d, err := m.Reserve(ctx, "r", lim)
	require.NoError(t, err)
	require.True(t, d.Allowed, "Inspect took no slot")
	c.Advance(15 * time.Second)
	s, err = m.Inspect(ctx, "r", lim)
	require.NoError(t, err)
	require.Equal(t, State{InWindow: 1, WindowLeft: 45 * time.Second, NextSlot: 45 * time.Second, LastGrantAgo: 15 * time.Second}, s)
}

// On-call tools ask why a robot is not delivering; Inspect answers
// without taking a slot or changing anything.
func ExampleMemory_Inspect() {
	ctx := context.Background()
	now := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	l := NewMemory(func() time.Time { return now })
	lim := Limit{Max: 2, Window: time.Minute}

	for range 2 {
		_, _ = l.Reserve(ctx, "ops-alerts", lim)
	}
	now = now.Add(20 * time.Second)
	s, _ := l.Inspect(ctx, "ops-alerts", lim)
	fmt.Printf("in window %d/%d, next slot in %v\n", s.InWindow, lim.Max, s.NextSlot)

	_ = l.CoolOff(ctx, "ops-alerts", 10*time.Minute)
	s, _ = l.Inspect(ctx, "ops-alerts", lim)
	fmt.Printf("cooling off for %v, next slot in %v\n", s.CoolOffLeft, s.NextSlot)
	// Output:
	// in window 2/2, next slot in 40s
	// cooling off for 10m0s, next slot in 10m0s
}

// A grant dated after the Redis server's now (its clock stepped back, a
// failover to a server whose clock is behind) is no evidence of when it
// was made: LastGrantAgo is negative, not "a moment ago". The Memory
// limiter does the same when its clock goes back.
func TestInspectGrantDatedAhead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lim := Limit{Max: 5, Window: time.Minute}
	t.Run("redis", func(t *testing.T) {
		p := freshPrefix(t)
		rdb := newRedisClient(t)
		l, err := NewRedis(rdb, WithPrefix(p))
		require.NoError(t, err)
		require.NoError(t, rdb.Set(ctx, l.epochKey("r"), "0", 0).Err())
		ahead := time.Now().Add(10 * time.Second).UnixMicro()
		require.NoError(t, rdb.ZAdd(ctx, l.windowKey("r"), redis.Z{Score: float64(ahead), Member: fmt.Sprintf("%d:x", ahead)}).Err())
		s, err := l.Inspect(ctx, "r", lim)
		require.NoError(t, err)
		require.Equal(t, 1, s.InWindow)
		require.Negative(t, s.LastGrantAgo)
	})
	t.Run("memory", func(t *testing.T) {
		c := newFakeClock()
		m := NewMemory(c.Now)
		d, err := m.Reserve(ctx, "r", lim)
		require.NoError(t, err)
		require.True(t, d.Allowed)
		c.Advance(-10 * time.Second)
		s, err := m.Inspect(ctx, "r", lim)
		require.NoError(t, err)
		require.Equal(t, 1, s.InWindow)
		require.Negative(t, s.LastGrantAgo)
	})
}
