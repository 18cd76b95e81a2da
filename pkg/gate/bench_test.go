package gate_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/gate"
	"github.com/botrelay/botrelay/pkg/limiter"
)

// trips is a go-redis hook counting the requests a client sends (one per
// command, one per pipeline), as the limiter benchmark counts them.
type trips struct{ n atomic.Int64 }

func (h *trips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *trips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *trips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// BenchmarkClaimReserve measures the check before a request, a fresh
// message's claim and a granted decision, over 1,000 robots: "combined"
// as one script, "two_calls" as the claim then the decision; "parallel"
// from 8 goroutines per CPU (Redis's throughput), "serial" from one (a
// lane's latency).
func BenchmarkClaimReserve(b *testing.B) {
	ctx := context.Background()
	lim := limiter.Limit{Max: 1 << 30, Window: time.Second}
	for _, bc := range []struct {
		name               string
		combined, parallel bool
	}{
		{"combined/parallel", true, true}, {"two_calls/parallel", false, true},
		{"combined/serial", true, false}, {"two_calls/serial", false, false},
	} {
		combined := bc.combined
		b.Run(bc.name, func(b *testing.B) {
			rdb, led, l := storesB(b)
			var rt trips
			rdb.AddHook(&rt)
			g := gate.New(led, l)
			require.NoError(b, g.Load(ctx))
			require.NoError(b, led.Load(ctx))
			require.NoError(b, l.Load(ctx))
			var next atomic.Uint64
			rt.n.Store(0)
			b.SetParallelism(8)
			b.ResetTimer()
			start := time.Now()
			loop := func(more func() bool) {
				for more() {
					i := next.Add(1)
					robot := "robot-" + strconv.FormatUint(i%1000, 10)
					req := gate.Request{Key: robot + "/" + strconv.FormatUint(i, 10), Holder: "w", Lease: time.Minute,
						Robot: robot, Limit: lim, HoldMax: time.Second}
					var (
						res gate.Result
						err error
					)
					if combined {
						res, err = g.ClaimReserve(ctx, req)
					} else {
						res, err = twoCalls(ctx, led, l, req)
					}
					if err != nil || !res.Decision.Allowed {
						b.Errorf("%+v %v", res, err)
						return
					}
				}
			}
			if bc.parallel {
				b.RunParallel(func(pb *testing.PB) { loop(pb.Next) })
			} else {
				i := 0
				loop(func() bool { i++; return i <= b.N })
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "checks/s")
			b.ReportMetric(float64(rt.n.Load())/float64(b.N), "roundtrips/op")
		})
	}
}
