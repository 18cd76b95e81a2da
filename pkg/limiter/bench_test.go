package limiter

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchCases are the decision mixes benchmarked: every decision granting,
// and the steady state of busy robots where nearly every decision denies.
var benchCases = []struct {
	name string
	lim  Limit
}{
	{name: "admit", lim: Limit{Max: 1 << 30, Window: time.Second}},
	{name: "saturated", lim: Limit{Max: 20, Window: time.Minute}},
}

const benchRobots = 1000

func benchRobotNames() []string {
	names := make([]string, benchRobots)
	for i := range names {
		names[i] = "robot-" + strconv.Itoa(i)
	}
	return names
}

// BenchmarkRedisReserve measures decisions per second against the real
// Redis, from 8 goroutines per CPU over 1000 robots, and the requests sent
// per decision.
func BenchmarkRedisReserve(b *testing.B) {
	ctx := context.Background()
	robots := benchRobotNames()
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			rdb := newRedisClient(b)
			var rt roundTrips
			rdb.AddHook(&rt)
			l, err := NewRedis(rdb, WithPrefix(testPrefix(b)))
			require.NoError(b, err)
			require.NoError(b, l.Load(ctx))

			var next atomic.Uint64
			var granted atomic.Int64
			b.SetParallelism(8)
			rt.n.Store(0)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					d, err := l.Reserve(ctx, robots[next.Add(1)%benchRobots], bc.lim)
					if err != nil {
						b.Error(err)
						return
					}
					if d.Allowed {
						granted.Add(1)
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "decisions/s")
			b.ReportMetric(float64(rt.n.Load())/float64(b.N), "roundtrips/op")
			b.ReportMetric(float64(granted.Load())/float64(b.N), "granted/op")
		})
	}
}

// BenchmarkMemoryReserve is the in-process baseline.
func BenchmarkMemoryReserve(b *testing.B) {
	ctx := context.Background()
	robots := benchRobotNames()
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			m := NewMemory(nil)
			var next atomic.Uint64
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := m.Reserve(ctx, robots[next.Add(1)%benchRobots], bc.lim); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
		})
	}
}
