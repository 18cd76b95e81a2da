package limiter

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMemoryDropsIdleRobots checks that robots idle past their window, and
// past their cool-off, leave no state behind.
func TestMemoryDropsIdleRobots(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newFakeClock()
	m := NewMemory(c.Now)
	lim := Limit{Max: 20, Window: time.Minute}

	for i := range 100 {
		_, err := m.Reserve(ctx, "robot-"+strconv.Itoa(i), lim)
		require.NoError(t, err)
	}
	require.NoError(t, m.CoolOff(ctx, "banned", time.Hour))
	require.Equal(t, 101, m.robotCount())

	tests := []struct {
		name    string
		advance time.Duration
		want    int
	}{
		{name: "within the window everything stays", advance: 30 * time.Second, want: 102},
		{name: "past the window only the cooling robot stays", advance: 31 * time.Second, want: 2},
		{name: "past the cool-off only the busy robot stays", advance: time.Hour, want: 1},
	}
	for _, tc := range tests {
		c.Advance(tc.advance)
		// Enough decisions to trigger a sweep.
		for range 2 * 102 {
			_, err := m.Reserve(ctx, "busy", Limit{Max: 1000, Window: time.Second})
			require.NoError(t, err)
		}
		require.Equal(t, tc.want, m.robotCount(), tc.name)
	}
}

// TestMemoryClockStepsBack checks that grants stay counted when the clock
// steps back, as they would for Redis after a server clock change.
func TestMemoryClockStepsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newFakeClock()
	m := NewMemory(c.Now)
	lim := Limit{Max: 2, Window: time.Minute}
	start := c.Now()

	c.Set(start.Add(10 * time.Second))
	d, err := m.Reserve(ctx, "r", lim)
	require.NoError(t, err)
	require.True(t, d.Allowed)

	c.Set(start)
	d, err = m.Reserve(ctx, "r", lim)
	require.NoError(t, err)
	require.True(t, d.Allowed)

	d, err = m.Reserve(ctx, "r", lim)
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Equal(t, time.Minute, d.RetryAfter, "the earlier grant frees the first slot")
}

func TestNewMemoryNilClock(t *testing.T) {
	t.Parallel()
	m := NewMemory(nil)
	d, err := m.Reserve(context.Background(), "r", Limit{Max: 1, Window: time.Minute})
	require.NoError(t, err)
	require.True(t, d.Allowed)
}
