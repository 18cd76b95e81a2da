package console

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDeliveriesSeries(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	samples := []Sample{
		{At: t0, Count: map[string]map[string]float64{"w1": {"ops": 10, "dev": 1}, "w2": {"ops": 5}}},
		{At: t0.Add(10 * time.Second), Count: map[string]map[string]float64{"w1": {"ops": 13, "dev": 1}, "w2": {"ops": 5}}},
		{At: t0.Add(20 * time.Second), Count: map[string]map[string]float64{"w1": {"ops": 14, "dev": 3}, "w2": {"ops": 2}}}, // w2 restarted
	}
	tests := []struct {
		name  string
		robot string
		want  []float64
	}{
		{name: "all robots", want: []float64{3, 1 + 2 + 2}},
		{name: "one robot", robot: "ops", want: []float64{3, 1 + 2}},
		{name: "other robot", robot: "dev", want: []float64{0, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []float64
			for _, p := range deliveries(samples, tt.robot) {
				got = append(got, p.Count)
			}
			require.Equal(t, tt.want, got)
		})
	}
}

// The bars are aligned to their step, the last one holding now: at 12:05
// with four 15-minute bars, 11:15, 11:30, 11:45 and 12:00.
func TestDeadSeries(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 12, 1, h, m, 0, 0, time.UTC) }
	now := at(12, 5)
	dead := []deadEntry{
		{Robot: "ops", At: at(11, 5)},  // before the first bar
		{Robot: "ops", At: at(11, 20)}, // first bar
		{Robot: "dev", At: at(12, 4)},  // last bar
		{Robot: "ops", At: at(12, 4)},  // last bar
	}
	pts := deadSeries(dead, "", now, time.Hour, 4)
	require.Len(t, pts, 4)
	require.Equal(t, at(11, 15), pts[0].At)
	require.Equal(t, at(12, 0), pts[3].At)
	require.Equal(t, []float64{1, 0, 0, 2}, []float64{pts[0].Count, pts[1].Count, pts[2].Count, pts[3].Count})
	pts = deadSeries(dead, "dev", now, time.Hour, 4)
	require.Equal(t, []float64{0, 0, 0, 1}, []float64{pts[0].Count, pts[1].Count, pts[2].Count, pts[3].Count})
}
