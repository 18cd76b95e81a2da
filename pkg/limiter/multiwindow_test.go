package limiter

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMultiWindowExact hammers one robot with Feishu's two windows, 100
// per "minute" and 5 per "second" (scaled: 1.5 s and 25 ms), from 4
// callers (4 Redis clients: 4 workers), and checks with the deciding
// store's own times that no rolling window of either length ever held
// more than its Max, and that both budgets were used.
func TestMultiWindowExact(t *testing.T) {
	t.Parallel()
	const (
		callers = 4
		longN   = 100
		long    = 1500 * time.Millisecond
		shortN  = 5
		short   = 25 * time.Millisecond
		run     = 2500 * time.Millisecond
	)
	lim := Limit{Max: longN, Window: long, Also: []Window{{Max: shortN, Window: short}}}

	tests := []struct {
		name     string
		limiters func(t *testing.T, obs func(string, Decision, time.Time)) []Limiter
	}{
		{name: "memory", limiters: func(t *testing.T, obs func(string, Decision, time.Time)) []Limiter {
			m := NewMemory(nil)
			m.observe = obs
			return []Limiter{m, m, m, m}
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
			ls := tc.limiters(t, func(_ string, d Decision, at time.Time) {
				if d.Allowed {
					mu.Lock()
					grants = append(grants, at)
					mu.Unlock()
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), run)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, callers)
			for _, l := range ls {
				wg.Go(func() {
					for ctx.Err() == nil {
						d, err := l.Reserve(ctx, "feishu-bot", lim)
						if err != nil {
							if ctx.Err() == nil {
								errs <- err
							}
							return
						}
						if !d.Allowed && sleepCtx(ctx, d.RetryAfter) != nil {
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

			mu.Lock()
			defer mu.Unlock()
			sort.Slice(grants, func(i, j int) bool { return grants[i].Before(grants[j]) })
			for _, w := range []struct {
				n    int
				span time.Duration
			}{{shortN, short}, {longN, long}} {
				for i := 0; i+w.n < len(grants); i++ {
					gap := grants[i+w.n].Sub(grants[i])
					require.GreaterOrEqual(t, gap, w.span,
						"grants %d and %d are %v apart: %d grants in one %v window", i, i+w.n, gap, w.n+1, w.span)
				}
			}
			// Two long windows started within the run: both budgets used.
			t.Logf("%d grants in %v", len(grants), run)
			require.Greater(t, len(grants), longN, "the long window's budget was used and renewed")
			require.Less(t, grants[longN-1].Sub(grants[0]), long/2, "the short window paces the first 100 (5 per 25ms: ~0.5s)")
			require.GreaterOrEqual(t, grants[longN-1].Sub(grants[0]), (longN/shortN-1)*short, "5 per short window, never more")
		})
	}
}

func TestAlsoInvalid(t *testing.T) {
	tests := []struct {
		name string
		also Window
	}{
		{"zero max", Window{Max: 0, Window: time.Second}},
		{"zero window", Window{Max: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewMemory(nil).Reserve(context.Background(), "r", Limit{Max: 1, Window: time.Minute, Also: []Window{tt.also}})
			require.ErrorIs(t, err, ErrInvalidLimit)
		})
	}
}
