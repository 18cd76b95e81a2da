package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
	"github.com/botrelay/botrelay/pkg/worker"
)

// A worker started while JetStream does not answer (a cluster electing the
// stream's leader, a server restarting) keeps trying to create the streams,
// reports itself as starting meanwhile, and serves once the server is back:
// it does not exit.
func TestWorkerStartsOnceJetStreamAnswers(t *testing.T) {
	ns := testenv.StartRestartableNATS(t)
	r := newRig(t, ns.URL(), robotsim.Config{})
	r.addRobot(robotsim.PlatformDingTalk, "late", "sec", "sec", nil, limiter.Limit{Max: 20, Window: time.Second, Margin: 50 * time.Millisecond})
	r.publishN("late", "after the restart", 1)

	// The worker's connection is made, then the server goes away.
	_, js := testenv.Connect(t, ns.URL())
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()})
	t.Cleanup(func() { _ = rdb.Close() })
	lim, err := limiter.NewRedis(rdb, limiter.WithPrefix(r.prefix))
	require.NoError(t, err)
	w, err := worker.New(js, worker.Config{Topology: r.topo, Robots: r.robots, Sender: newSender(t), Limiter: lim,
		Ledger: ledger.NewRedis(rdb, r.prefix, time.Hour), AckWait: 2 * time.Second, Logger: testLogger()})
	require.NoError(t, err)
	ns.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	// Long enough for several tries (each bounded by JetStream's timeout).
	time.Sleep(1500 * time.Millisecond)
	require.ErrorContains(t, w.Healthy(), "starting: the streams are not ready yet")
	select {
	case err := <-done:
		t.Fatalf("Run returned while JetStream was away: %v", err)
	default:
	}

	ns.Start()
	testenv.Eventually(t, 30*time.Second, func() bool { return w.Healthy() == nil }, "the worker started")
	r.waitExactly("late", "after the restart 0")
}

// Run gives up at once on an existing stream it cannot use, rather than
// retrying what no retry mends.
func TestWorkerRunFailsOnIncompatibleStream(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformDingTalk, "a", "sec", "sec", nil, limiter.Limit{Max: 20, Window: time.Second})
	// The dead-letter stream exists with another retention.
	ctx := context.Background()
	require.NoError(t, r.js.DeleteStream(ctx, r.topo.DLQStream()))
	_, err := r.js.CreateStream(ctx, jetstream.StreamConfig{Name: r.topo.DLQStream(), Subjects: []string{r.topo.DLQSubject("*")},
		Retention: jetstream.WorkQueuePolicy})
	require.NoError(t, err)
	w, err := worker.New(r.js, worker.Config{Topology: r.topo, Robots: r.robots, Sender: newSender(t),
		Limiter: limiter.NewMemory(nil), Ledger: ledger.NewMemory(), Logger: testLogger()})
	require.NoError(t, err)
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = w.Run(rctx)
	require.ErrorIs(t, err, stream.ErrIncompatible)
	require.NoError(t, rctx.Err(), "Run returned at once, not at its deadline")
}
