package worker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The member choice: the earliest next slot, ties in turn from the cursor,
// members out of rotation (-1) never.
func TestEarliest(t *testing.T) {
	tests := []struct {
		name  string
		slots []time.Duration
		from  int
		want  int
	}{
		{name: "all free, from the first", slots: []time.Duration{0, 0, 0}, from: 0, want: 0},
		{name: "all free, in turn", slots: []time.Duration{0, 0, 0}, from: 1, want: 1},
		{name: "all free, going round", slots: []time.Duration{0, 0, 0}, from: 2, want: 2},
		{name: "earliest wins over the turn", slots: []time.Duration{3 * time.Second, time.Second, 2 * time.Second}, from: 0, want: 1},
		{name: "a cooling member is skipped", slots: []time.Duration{10 * time.Minute, 0, 0}, from: 0, want: 1},
		{name: "out of rotation is skipped", slots: []time.Duration{-1, 5 * time.Second, -1}, from: 0, want: 1},
		{name: "out of rotation skipped even at the turn", slots: []time.Duration{0, -1, 0}, from: 1, want: 2},
		{name: "equal slots after the cursor", slots: []time.Duration{time.Second, time.Second, time.Second}, from: 2, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, earliest(tt.slots, tt.from))
		})
	}
}
