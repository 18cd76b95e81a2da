package worker_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/robotsim"
)

// holLatencies runs the head-of-line scenario: robot "backlog" (DingTalk,
// 20/min) holds a backlog of backlog messages while robot "live" (POPO)
// receives n messages every interval. It returns the publish-to-receipt
// latency of each live message and the backlog left when the last arrived.
func holLatencies(tb testing.TB, backlog, n int, interval time.Duration) ([]time.Duration, uint64) {
	r := newRig(tb, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformDingTalk, "backlog", "sec", "sec", nil, dingLimit)
	r.addRobot(robotsim.PlatformPOPO, "live", "sec", "sec", nil, limiter.Limit{Max: 600, Window: time.Minute})
	require.NoError(tb, r.sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "live", Secret: "sec", Limit: 600}))
	envs := make([]*envelope.Envelope, backlog)
	for i := range envs {
		envs[i] = envelope.New("backlog", text(fmt.Sprintf("bulk %d", i)))
	}
	for chunk := range slices.Chunk(envs, 1000) {
		_, err := r.pub.PublishAll(context.Background(), chunk)
		require.NoError(tb, err)
	}
	r.startWorker(nil)
	r.startWorker(nil)
	testenv.Eventually(tb, 30*time.Second, func() bool { return len(r.sim.Received("backlog")) >= 20 }, "backlog robot saturated")

	sent := make(map[string]time.Time, n)
	live := make([]string, n)
	for i := range n {
		live[i] = fmt.Sprintf("live %d", i)
		env := envelope.New("live", text(live[i]))
		sent[live[i]] = time.Now()
		r.publish(env)
		time.Sleep(interval)
	}
	r.waitPosts("live", expect{timeout: 30 * time.Second}, live...)
	got := r.sim.Received("live")
	lat := make([]time.Duration, len(got))
	for i, rc := range got {
		lat[i] = rc.At.Sub(sent[rc.Content])
	}
	slices.Sort(lat)
	return lat, r.outPending()
}

// A robot with thousands of queued messages at its limit does not hold up
// another robot: every live message is delivered while the backlog waits.
func TestNoHeadOfLineBlocking(t *testing.T) {
	lat, left := holLatencies(t, 5000, 8, 250*time.Millisecond)
	require.Len(t, lat, 8)
	require.GreaterOrEqual(t, left, uint64(4900), "the backlog robot stays limited meanwhile")
	t.Logf("live latency p50 %s max %s with %d backlog messages waiting", lat[len(lat)/2], lat[len(lat)-1], left)
}

// BenchmarkHeadOfLine reports the publish-to-receipt latency of a robot
// receiving one message every 100 ms while another robot holds a
// 5,000-message backlog at 20/min. Each iteration is one live message.
func BenchmarkHeadOfLine(b *testing.B) {
	lat, _ := holLatencies(b, 5000, max(b.N, 20), 100*time.Millisecond)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
