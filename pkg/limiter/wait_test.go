package limiter

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// recordingSleep returns a Waiter.Sleep that records each pause, lets it
// pass on clock (when not nil), and cancels ctx at pause number cancelAt
// (when > 0).
func recordingSleep(clock *fakeClock, cancel context.CancelFunc, cancelAt int, pauses *[]time.Duration) func(context.Context, time.Duration) error {
	return func(ctx context.Context, d time.Duration) error {
		*pauses = append(*pauses, d)
		if clock != nil {
			clock.Advance(d)
		}
		if cancelAt > 0 && len(*pauses) >= cancelAt {
			cancel()
			return ctx.Err()
		}
		return nil
	}
}

func noJitter(time.Duration) time.Duration { return 0 }

func TestWaiterMemory(t *testing.T) {
	t.Parallel()
	lim := Limit{Max: 1, Window: time.Minute}
	tests := []struct {
		name       string
		prepare    func(t *testing.T, m *Memory)
		waiter     Waiter
		cancelAt   int
		wantPauses []time.Duration
		wantErr    error
		wantD      Decision
	}{
		{
			name:    "a free slot is granted without pausing",
			prepare: func(*testing.T, *Memory) {},
			waiter:  Waiter{Jitter: noJitter},
			wantD:   Decision{Allowed: true},
		},
		{
			name: "a full window pauses RetryAfter plus jitter",
			prepare: func(t *testing.T, m *Memory) {
				_, err := m.Reserve(context.Background(), "r", lim)
				require.NoError(t, err)
			},
			waiter:     Waiter{Jitter: func(time.Duration) time.Duration { return 7 * time.Millisecond }},
			wantPauses: []time.Duration{time.Minute + 7*time.Millisecond},
			wantD:      Decision{Allowed: true},
		},
		{
			name: "a negative jitter is ignored",
			prepare: func(t *testing.T, m *Memory) {
				_, err := m.Reserve(context.Background(), "r", lim)
				require.NoError(t, err)
			},
			waiter:     Waiter{Jitter: func(time.Duration) time.Duration { return -time.Hour }},
			wantPauses: []time.Duration{time.Minute},
			wantD:      Decision{Allowed: true},
		},
		{
			name: "a cool-off is waited out",
			prepare: func(t *testing.T, m *Memory) {
				require.NoError(t, m.CoolOff(context.Background(), "r", 10*time.Minute))
			},
			waiter:     Waiter{Jitter: noJitter},
			wantPauses: []time.Duration{10 * time.Minute},
			wantD:      Decision{Allowed: true},
		},
		{
			name: "a wait beyond MaxWait is refused with the decision",
			prepare: func(t *testing.T, m *Memory) {
				require.NoError(t, m.CoolOff(context.Background(), "r", 10*time.Minute))
			},
			waiter:  Waiter{Jitter: noJitter, MaxWait: time.Minute},
			wantErr: ErrWaitTooLong,
			wantD:   Decision{RetryAfter: 10 * time.Minute, CoolingOff: true},
		},
		{
			name: "an ended context stops the wait",
			prepare: func(t *testing.T, m *Memory) {
				_, err := m.Reserve(context.Background(), "r", lim)
				require.NoError(t, err)
			},
			waiter:     Waiter{Jitter: noJitter},
			cancelAt:   1,
			wantPauses: []time.Duration{time.Minute},
			wantErr:    context.Canceled,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := newFakeClock()
			m := NewMemory(c.Now)
			tc.prepare(t, m)

			var pauses []time.Duration
			w := tc.waiter
			w.Sleep = recordingSleep(c, cancel, tc.cancelAt, &pauses)
			d, err := w.Wait(ctx, m, "r", lim)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.wantD, d)
			require.Equal(t, tc.wantPauses, pauses)
		})
	}
}

func TestWaitInvalidArguments(t *testing.T) {
	t.Parallel()
	m := NewMemory(nil)
	ctx := context.Background()
	_, err := Wait(ctx, m, "r", Limit{})
	require.ErrorIs(t, err, ErrInvalidLimit)
	_, err = Wait(ctx, m, "", Limit{Max: 1, Window: time.Second})
	require.ErrorIs(t, err, ErrInvalidRobot)

	done, cancel := context.WithCancel(ctx)
	cancel()
	d, err := Wait(done, m, "r", Limit{Max: 1, Window: time.Second})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, d.Allowed)
}

// TestWaitFailsClosed checks that with Redis unreachable, Wait backs off
// (doubling up to the cap) and never grants.
func TestWaitFailsClosed(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	l, err := NewRedis(rdb)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pauses []time.Duration
	w := Waiter{Jitter: noJitter, Sleep: recordingSleep(nil, cancel, 7, &pauses)}
	d, err := w.Wait(ctx, l, "r", Limit{Max: 20, Window: time.Minute})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, ErrUnavailable, "the last Reserve error is kept")
	require.False(t, d.Allowed)
	ms := time.Millisecond
	require.Equal(t, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 2000 * ms, 2000 * ms}, pauses)
}

// TestWaitRecovers checks that Wait grants once Redis answers again, and
// that the error backoff restarts after a denial.
func TestWaitRecovers(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	rdb := newRedisClient(t, func(o *redis.Options) {
		o.MaxRetries = -1
		o.DialerRetries = 1
		o.Dialer = flakyDialer(3)
	})
	l, err := NewRedis(rdb, WithPrefix(prefix))
	require.NoError(t, err)

	var pauses []time.Duration
	w := Waiter{Jitter: noJitter, ErrorDelay: 10 * time.Millisecond, MaxErrorDelay: 25 * time.Millisecond}
	w.Sleep = func(ctx context.Context, d time.Duration) error {
		pauses = append(pauses, d)
		return sleepCtx(ctx, d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := w.Wait(ctx, l, "r", Limit{Max: 1, Window: time.Minute})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	ms := time.Millisecond
	require.Equal(t, []time.Duration{10 * ms, 20 * ms, 25 * ms}, pauses)
}

// TestWaitRealTimer runs Wait with its default timer and jitter.
func TestWaitRealTimer(t *testing.T) {
	t.Parallel()
	m := NewMemory(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lim := Limit{Max: 1, Window: 50 * time.Millisecond}
	for range 3 {
		d, err := Wait(ctx, m, "r", lim)
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
}

func TestDefaultJitter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d, most time.Duration
	}{
		{d: 0, most: 0},
		{d: 5, most: 0},
		{d: 100 * time.Millisecond, most: 10 * time.Millisecond},
		{d: 10 * time.Minute, most: 100 * time.Millisecond},
	}
	for _, tc := range tests {
		for range 100 {
			j := defaultJitter(tc.d)
			require.GreaterOrEqual(t, j, time.Duration(0))
			require.LessOrEqual(t, j, tc.most, "d=%v", tc.d)
		}
	}
}
