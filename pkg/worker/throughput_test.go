package worker_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/robotsim"
)

// BenchmarkDeliveryThroughput measures end-to-end delivery: b.N messages
// spread over 50 robots (limits raised so the limiter never waits) are
// published first, then one worker delivers them through the real Redis
// limiter and ledger to the simulator over HTTP, signing each request.
// BOTRELAY_BENCH_ROBOTS sets another number of robots (bench-scale's
// throughput scenario uses 500).
func BenchmarkDeliveryThroughput(b *testing.B) {
	robots := 50
	if n, err := strconv.Atoi(os.Getenv("BOTRELAY_BENCH_ROBOTS")); err == nil && n > 0 {
		robots = n
	}
	r := newRig(b, "", robotsim.Config{})
	for i := range robots {
		name := fmt.Sprintf("r%03d", i)
		platform := robotsim.PlatformDingTalk
		if i%2 == 1 {
			platform = robotsim.PlatformPOPO
		}
		r.addRobot(platform, name, "sec", "sec", nil, limiter.Limit{Max: 1_000_000, Window: time.Minute})
	}
	envs := make([]*envelope.Envelope, b.N)
	for i := range envs {
		envs[i] = envelope.New(fmt.Sprintf("r%03d", i%robots), text(fmt.Sprintf("message %d", i)))
	}
	start := time.Now()
	_, err := r.pub.PublishAll(context.Background(), envs)
	require.NoError(b, err)
	pubTook := time.Since(start)

	b.ResetTimer()
	start = time.Now()
	r.startWorker(nil)
	total := func() int {
		n := 0
		for i := range robots {
			n += r.sim.Stats(fmt.Sprintf("r%03d", i)).Accepted
		}
		return n
	}
	testenv.Eventually(b, 10*time.Minute, func() bool { return total() >= b.N }, "all delivered")
	took := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/took.Seconds(), "delivered/s")
	b.ReportMetric(float64(b.N)/pubTook.Seconds(), "published/s")
}
