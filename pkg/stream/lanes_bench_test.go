package stream_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
)

// BenchmarkLaneConsumerCreate measures how fast lane consumers can be
// created, by how many at once (docs/design/fleet.md records the figures).
func BenchmarkLaneConsumerCreate(b *testing.B) {
	for _, par := range []int{1, 4} {
		b.Run(fmt.Sprintf("parallel-%d", par), func(b *testing.B) {
			ctx := context.Background()
			_, js := testenv.Connect(b, testenv.NATSURL(b))
			topo := testenv.Topology(b, js)
			require.NoError(b, topo.Ensure(ctx, js))
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range par {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						_, err := topo.EnsureLaneConsumer(ctx, js, fmt.Sprintf("r%06d", i), 30*time.Second, time.Minute)
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "consumers/s")
		})
	}
}
