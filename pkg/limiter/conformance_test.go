package limiter

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// env is one backend under test.
type env struct {
	l Limiter
	// other is a second view of the same state: another client and limiter
	// for Redis, the same limiter for Memory.
	other Limiter
	// pass lets d elapse for l: a sleep for Redis, a clock step for Memory.
	pass func(time.Duration)
}

type backend struct {
	name  string
	setup func(t *testing.T) env
}

func backends() []backend {
	return []backend{
		{name: "memory", setup: func(t *testing.T) env {
			c := newFakeClock()
			m := NewMemory(c.Now)
			return env{l: m, other: m, pass: c.Advance}
		}},
		{name: "redis", setup: func(t *testing.T) env {
			p := testPrefix(t)
			return env{l: newTestRedis(t, p), other: newTestRedis(t, p), pass: time.Sleep}
		}},
	}
}

// TestConformance runs the same behaviour table against every backend.
func TestConformance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const robot = "ops-alerts.dingtalk"

	reserveN := func(t *testing.T, l Limiter, robot string, lim Limit, n int) {
		t.Helper()
		for i := range n {
			d, err := l.Reserve(ctx, robot, lim)
			require.NoError(t, err)
			require.True(t, d.Allowed, "reservation %d", i+1)
		}
	}

	tests := []struct {
		name string
		run  func(t *testing.T, e env)
	}{
		{name: "fills, denies, then frees a slot after RetryAfter", run: func(t *testing.T, e env) {
			lim := Limit{Max: 5, Window: 300 * time.Millisecond}
			reserveN(t, e.l, robot, lim, 5)
			d, err := e.l.Reserve(ctx, robot, lim)
			require.NoError(t, err)
			require.False(t, d.Allowed)
			require.False(t, d.CoolingOff)
			require.Greater(t, d.RetryAfter, time.Duration(0))
			require.LessOrEqual(t, d.RetryAfter, lim.Window)

			e.pass(d.RetryAfter)
			d, err = e.l.Reserve(ctx, robot, lim)
			require.NoError(t, err)
			require.True(t, d.Allowed, "a slot is free after RetryAfter")
		}},
		{name: "RetryAfter points at the oldest grant still counted", run: func(t *testing.T, e env) {
			lim := Limit{Max: 2, Window: 300 * time.Millisecond}
			reserveN(t, e.l, robot, lim, 1)
			e.pass(100 * time.Millisecond)
			reserveN(t, e.l, robot, lim, 1)
			d, err := e.l.Reserve(ctx, robot, lim)
			require.NoError(t, err)
			require.False(t, d.Allowed)
			require.Greater(t, d.RetryAfter, time.Duration(0))
			require.LessOrEqual(t, d.RetryAfter, 200*time.Millisecond)
		}},
		{name: "Margin widens the window", run: func(t *testing.T, e env) {
			lim := Limit{Max: 1, Window: 100 * time.Millisecond, Margin: 100 * time.Millisecond}
			reserveN(t, e.l, robot, lim, 1)
			d, err := e.l.Reserve(ctx, robot, lim)
			require.NoError(t, err)
			require.False(t, d.Allowed)
			require.Greater(t, d.RetryAfter, lim.Window)
			require.LessOrEqual(t, d.RetryAfter, lim.Window+lim.Margin)
		}},
		{name: "a lower Max counts from a younger grant", run: func(t *testing.T, e env) {
			lim := Limit{Max: 3, Window: time.Second}
			for range 3 {
				reserveN(t, e.l, robot, lim, 1)
				e.pass(50 * time.Millisecond)
			}
			one, err := e.l.Reserve(ctx, robot, Limit{Max: 1, Window: time.Second})
			require.NoError(t, err)
			three, err := e.l.Reserve(ctx, robot, lim)
			require.NoError(t, err)
			require.False(t, one.Allowed)
			require.False(t, three.Allowed)
			// one waits for the third grant, three for the first: at least
			// 100ms apart, and three was asked later.
			require.GreaterOrEqual(t, one.RetryAfter-three.RetryAfter, 100*time.Millisecond)
		}},
		{name: "robots are independent", run: func(t *testing.T, e env) {
			lim := Limit{Max: 2, Window: time.Minute}
			reserveN(t, e.l, robot, lim, 2)
			reserveN(t, e.l, "other-robot", lim, 2)
			require.NoError(t, e.l.CoolOff(ctx, robot, time.Minute))
			reserveN(t, e.l, "third-robot", lim, 1)
		}},
		{name: "cool-off denies with the time left", run: func(t *testing.T, e env) {
			require.NoError(t, e.l.CoolOff(ctx, robot, time.Second))
			d, err := e.l.Reserve(ctx, robot, Limit{Max: 20, Window: time.Minute})
			require.NoError(t, err)
			require.False(t, d.Allowed)
			require.True(t, d.CoolingOff)
			require.Greater(t, d.RetryAfter, 500*time.Millisecond)
			require.LessOrEqual(t, d.RetryAfter, time.Second)
		}},
		{name: "a shorter cool-off does not shorten, a longer one extends", run: func(t *testing.T, e env) {
			lim := Limit{Max: 20, Window: time.Minute}
			require.NoError(t, e.l.CoolOff(ctx, robot, 2*time.Second))
			require.NoError(t, e.l.CoolOff(ctx, robot, 10*time.Millisecond))
			d, err := e.l.Reserve(ctx, robot, lim)
			require.NoError(t, err)
			require.True(t, d.CoolingOff)
			require.Greater(t, d.RetryAfter, time.Second)

			require.NoError(t, e.l.CoolOff(ctx, robot, 10*time.Second))
			d, err = e.l.Reserve(ctx, robot, lim)
			require.NoError(t, err)
			require.True(t, d.CoolingOff)
			require.Greater(t, d.RetryAfter, 9*time.Second)
		}},
		{name: "cool-off ends and denials in it were not counted", run: func(t *testing.T, e env) {
			lim := Limit{Max: 1, Window: time.Minute}
			require.NoError(t, e.l.CoolOff(ctx, robot, 150*time.Millisecond))
			var d Decision
			for range 3 {
				var err error
				d, err = e.l.Reserve(ctx, robot, lim)
				require.NoError(t, err)
				require.True(t, d.CoolingOff)
			}
			e.pass(d.RetryAfter)
			d, err := e.l.Reserve(ctx, robot, lim)
			require.NoError(t, err)
			require.True(t, d.Allowed, "allowed once the cool-off is over")
			require.False(t, d.CoolingOff)
		}},
		{name: "cool-off is seen at once through another client", run: func(t *testing.T, e env) {
			require.NoError(t, e.l.CoolOff(ctx, robot, time.Minute))
			d, err := e.other.Reserve(ctx, robot, Limit{Max: 20, Window: time.Minute})
			require.NoError(t, err)
			require.False(t, d.Allowed)
			require.True(t, d.CoolingOff)
		}},
		{name: "grants are shared by clients", run: func(t *testing.T, e env) {
			lim := Limit{Max: 3, Window: time.Minute}
			reserveN(t, e.l, robot, lim, 2)
			reserveN(t, e.other, robot, lim, 1)
			d, err := e.l.Reserve(ctx, robot, lim)
			require.NoError(t, err)
			require.False(t, d.Allowed)
		}},
		{name: "zero or negative cool-off does nothing", run: func(t *testing.T, e env) {
			require.NoError(t, e.l.CoolOff(ctx, robot, 0))
			require.NoError(t, e.l.CoolOff(ctx, robot, -time.Second))
			reserveN(t, e.l, robot, Limit{Max: 1, Window: time.Minute}, 1)
		}},
		{name: "invalid arguments are refused, never allowed", run: func(t *testing.T, e env) {
			ok := Limit{Max: 1, Window: time.Minute}
			cases := []struct {
				robot string
				lim   Limit
				want  error
			}{
				{robot, Limit{Max: 0, Window: time.Minute}, ErrInvalidLimit},
				{robot, Limit{Max: -1, Window: time.Minute}, ErrInvalidLimit},
				{robot, Limit{Max: 1}, ErrInvalidLimit},
				{robot, Limit{Max: 1, Window: time.Minute, Margin: -time.Second}, ErrInvalidLimit},
				{"", ok, ErrInvalidRobot},
				{"a{b", ok, ErrInvalidRobot},
				{"a}b", ok, ErrInvalidRobot},
			}
			for _, c := range cases {
				d, err := e.l.Reserve(ctx, c.robot, c.lim)
				require.ErrorIs(t, err, c.want, "%q %+v", c.robot, c.lim)
				require.False(t, d.Allowed)
			}
			require.ErrorIs(t, e.l.CoolOff(ctx, "", time.Second), ErrInvalidRobot)
			require.ErrorIs(t, e.l.CoolOff(ctx, "{x}", time.Second), ErrInvalidRobot)
		}},
	}
	for _, b := range backends() {
		for _, tc := range tests {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t, b.setup(t))
			})
		}
	}
}

// TestRollingWindow hammers one robot from 8 concurrent callers (for Redis,
// each with its own client) that sleep RetryAfter when denied, records the
// time of every grant as the deciding store saw it (Redis TIME for Redis),
// and checks that no half-open window [t, t+W) holds more than Max grants
// while at least 90% of the possible grants were made.
func TestRollingWindow(t *testing.T) {
	t.Parallel()
	const (
		callers = 8
		maxN    = 10
		window  = 200 * time.Millisecond
		run     = 2 * time.Second
	)
	lim := Limit{Max: maxN, Window: window}

	tests := []struct {
		name string
		// limiters returns one limiter per caller, reporting grants to obs.
		limiters func(t *testing.T, obs func(string, Decision, time.Time)) []Limiter
	}{
		{name: "memory", limiters: func(t *testing.T, obs func(string, Decision, time.Time)) []Limiter {
			m := NewMemory(nil)
			m.observe = obs
			ls := make([]Limiter, callers)
			for i := range ls {
				ls[i] = m
			}
			return ls
		}},
		{name: "redis", limiters: func(t *testing.T, obs func(string, Decision, time.Time)) []Limiter {
			p := testPrefix(t)
			ls := make([]Limiter, callers)
			for i := range ls {
				r := newTestRedis(t, p)
				r.observe = obs
				ls[i] = r
			}
			return ls
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var (
				mu     sync.Mutex
				grants []time.Time
			)
			obs := func(_ string, d Decision, at time.Time) {
				if d.Allowed {
					mu.Lock()
					grants = append(grants, at)
					mu.Unlock()
				}
			}
			ls := tc.limiters(t, obs)

			ctx, cancel := context.WithTimeout(context.Background(), run)
			defer cancel()
			var (
				wg      sync.WaitGroup
				allowed = make([]int, callers)
				errs    = make(chan error, callers)
			)
			for i, l := range ls {
				wg.Go(func() {
					for ctx.Err() == nil {
						d, err := l.Reserve(ctx, "hammered", lim)
						if err != nil {
							if ctx.Err() == nil {
								errs <- err
							}
							return
						}
						if d.Allowed {
							allowed[i]++
							continue
						}
						if sleepCtx(ctx, d.RetryAfter) != nil {
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}

			total := 0
			for _, n := range allowed {
				total += n
			}
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, grants, total, "every grant was observed")
			require.Greater(t, total, maxN)

			sort.Slice(grants, func(i, j int) bool { return grants[i].Before(grants[j]) })
			for i := 0; i+maxN < len(grants); i++ {
				gap := grants[i+maxN].Sub(grants[i])
				require.GreaterOrEqual(t, gap, window,
					"grants %d and %d are %v apart: %d grants in one window", i, i+maxN, gap, maxN+1)
			}

			// The most a run can grant: Max per window started within it.
			possible := maxN * int((run+window-1)/window)
			usage := float64(total) / float64(possible)
			t.Logf("%d grants in %v: %.1f%% of the %d possible", total, run, 100*usage, possible)
			require.GreaterOrEqual(t, usage, 0.9, "the limiter wastes slots")
		})
	}
}
