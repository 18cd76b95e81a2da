package worker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/limiter"
)

func TestFoldNeeded(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	ago := func(ds ...time.Duration) []time.Time {
		out := make([]time.Time, len(ds))
		for i, d := range ds {
			out[i] = now.Add(-d)
		}
		return out
	}
	n := func(k int, d time.Duration) []time.Time {
		out := make([]time.Time, k)
		for i := range out {
			out[i] = now.Add(-d)
		}
		return out
	}
	perMin := limiter.Limit{Max: 20, Window: time.Minute, Margin: 5 * time.Second}
	tests := []struct {
		name      string
		published []time.Time
		after     time.Duration
		st        limiter.State
		l         limiter.Limit
		want      bool
	}{
		{name: "one message is never folded", published: ago(10 * time.Minute), after: 30 * time.Second, l: perMin},
		{name: "all fit the free slots", published: n(20, 0), after: 30 * time.Second, l: perMin},
		{name: "one more than the free slots waits a window", published: n(21, 0), after: 30 * time.Second, l: perMin, want: true},
		{name: "a window is within after", published: n(21, 0), after: 2 * time.Minute, l: perMin},
		{name: "two windows are not", published: n(41, 0), after: 2 * time.Minute, l: perMin, want: true},
		{name: "the window is partly used", published: n(5, 0), after: 30 * time.Second, st: limiter.State{InWindow: 16}, l: perMin, want: true},
		{name: "the window has room for them", published: n(4, 0), after: 30 * time.Second, st: limiter.State{InWindow: 16}, l: perMin},
		{name: "the next slot is late for the oldest", published: ago(25*time.Second, 0), after: 30 * time.Second,
			st: limiter.State{NextSlot: 10 * time.Second}, l: perMin, want: true},
		{name: "the next slot is in time", published: ago(15*time.Second, 0), after: 30 * time.Second,
			st: limiter.State{NextSlot: 10 * time.Second}, l: perMin},
		{name: "the oldest already waited too long", published: ago(31*time.Second, 0), after: 30 * time.Second, l: perMin, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, foldNeeded(now, tt.published, tt.after, tt.st, tt.l))
		})
	}
}
