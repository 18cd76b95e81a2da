package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/stream"
)

func TestRobotStatus(t *testing.T) {
	eachServer(t, func(t *testing.T, nc *nats.Conn, js jetstream.JetStream) {
		ctx := context.Background()
		topo := testenv.Topology(t, js)
		require.NoError(t, topo.Ensure(ctx, js))

		got, err := topo.RobotStatus(ctx, js)
		require.NoError(t, err)
		require.Empty(t, got)

		publish := func(subject string, n int) {
			for range n {
				_, err := js.Publish(ctx, subject, []byte("x"))
				require.NoError(t, err)
			}
		}
		// ops: 3 queued, served by a worker holding one redelivered message.
		// dev: 1 queued, no consumer (no worker has it configured).
		// idle: a consumer with a worker waiting, nothing queued.
		// qa: only dead letters.
		publish(topo.OutSubject("ops"), 3)
		publish(topo.OutSubject("dev"), 1)
		publish(topo.DLQSubject("qa"), 2)
		publish(topo.DLQSubject("ops"), 1)

		ops, err := topo.EnsureRobotConsumer(ctx, js, "ops", time.Minute)
		require.NoError(t, err)
		m, err := ops.Next(jetstream.FetchMaxWait(5 * time.Second))
		require.NoError(t, err)
		require.NoError(t, m.Nak())
		m, err = ops.Next(jetstream.FetchMaxWait(5 * time.Second))
		require.NoError(t, err)
		md, err := m.Metadata()
		require.NoError(t, err)
		require.EqualValues(t, 2, md.NumDelivered)

		idle, err := topo.EnsureRobotConsumer(ctx, js, "idle", time.Minute)
		require.NoError(t, err)
		// A worker's lane: one pull request waiting at a time.
		pullCtx, stopPulling := context.WithCancel(ctx)
		pulled := make(chan struct{})
		go func() {
			defer close(pulled)
			for pullCtx.Err() == nil {
				_, _ = idle.Next(jetstream.FetchMaxWait(time.Second))
			}
		}()
		t.Cleanup(func() { stopPulling(); <-pulled })

		// A consumer that is not a robot's (a worker's sweep consumer) is
		// not reported.
		_, err = js.CreateOrUpdateConsumer(ctx, topo.OutStream(), jetstream.ConsumerConfig{
			Durable: "unknown_dev", FilterSubject: topo.OutSubject("dev"), AckPolicy: jetstream.AckExplicitPolicy,
		})
		require.NoError(t, err)

		testenv.Eventually(t, 10*time.Second, func() bool {
			got, err = topo.RobotStatus(ctx, js)
			require.NoError(t, err)
			return got["idle"].Waiting > 0
		}, "the idle robot's pull request is not seen")

		lastActive := got["ops"].LastActive
		require.WithinDuration(t, time.Now(), lastActive, time.Minute)
		want := map[string]stream.RobotQueue{
			"ops":  {Backlog: 3, Consumer: true, Pending: 1, Redelivered: 1, LastActive: lastActive, DeadLetters: 1},
			"dev":  {Backlog: 1},
			"idle": {Consumer: true, Waiting: got["idle"].Waiting, LastActive: got["idle"].LastActive},
			"qa":   {DeadLetters: 2},
		}
		require.Equal(t, want, got)
		require.Zero(t, got["ops"].Waiting, "the only client holds the message and is not pulling")

		// The message is acknowledged: nothing pending, one fewer queued.
		require.NoError(t, m.DoubleAck(ctx))
		got, err = topo.RobotStatus(ctx, js)
		require.NoError(t, err)
		require.Equal(t, uint64(2), got["ops"].Backlog)
		require.Zero(t, got["ops"].Pending)
		require.Zero(t, got["ops"].Redelivered)
	})
}

func TestRobotStatusNoStreams(t *testing.T) {
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js)
	_, err := topo.RobotStatus(context.Background(), js)
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	require.ErrorContains(t, err, topo.OutStream())
}
