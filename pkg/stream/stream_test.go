package stream_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/stream"
)

func TestTopologyNames(t *testing.T) {
	tests := []struct {
		name                 string
		topo                 stream.Topology
		outStream, dlqStream string
		outSubject, dlqSubj  string
	}{
		{name: "default prefix", topo: stream.Topology{},
			outStream: "BOTRELAY_OUT", dlqStream: "BOTRELAY_DLQ",
			outSubject: "botrelay.out.ops", dlqSubj: "botrelay.dlq.ops"},
		{name: "custom prefix", topo: stream.Topology{Prefix: "Staging-1_a"},
			outStream: "STAGING-1_A_OUT", dlqStream: "STAGING-1_A_DLQ",
			outSubject: "Staging-1_a.out.ops", dlqSubj: "Staging-1_a.dlq.ops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.topo.Validate())
			require.Equal(t, tt.outStream, tt.topo.OutStream())
			require.Equal(t, tt.dlqStream, tt.topo.DLQStream())
			require.Equal(t, tt.outSubject, tt.topo.OutSubject("ops"))
			require.Equal(t, tt.dlqSubj, tt.topo.DLQSubject("ops"))
			require.Equal(t, "robot_ops", tt.topo.ConsumerName("ops"))
			require.Equal(t, "ops", tt.topo.RobotFromSubject(tt.topo.OutSubject("ops")))
			require.Equal(t, "ops", tt.topo.RobotFromSubject(tt.topo.DLQSubject("ops")))
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		prefix string
		ok     bool
	}{
		{prefix: "", ok: true}, // the default
		{prefix: "botrelay", ok: true},
		{prefix: "a", ok: true},
		{prefix: "A-b_9", ok: true},
		{prefix: "abcdefghijabcdefghijabcdefghijab", ok: true}, // 32
		{prefix: "abcdefghijabcdefghijabcdefghijabc"},          // 33
		{prefix: "a.b"},
		{prefix: "a b"},
		{prefix: "a*"},
		{prefix: "a>"},
		{prefix: "ü"},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			err := stream.Topology{Prefix: tt.prefix}.Validate()
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, stream.ErrInvalidPrefix)
			require.ErrorContains(t, err, tt.prefix)
		})
	}
}

func TestEnsureRejectsBadPrefix(t *testing.T) {
	// Validation comes first: no server is needed.
	err := stream.Topology{Prefix: "a.b"}.Ensure(context.Background(), nil)
	require.ErrorIs(t, err, stream.ErrInvalidPrefix)
}

// servers returns the NATS servers to run a test against: an embedded one
// (or BOTRELAY_TEST_NATS_URL) and, when BOTRELAY_TEST_SYSTEM_NATS_URL is
// set, the machine's nats-server (2.9, the minimum botrelay supports).
func servers(t *testing.T) map[string]func(t *testing.T) string {
	out := map[string]func(t *testing.T) string{
		"embedded": func(t *testing.T) string { return testenv.NATSURL(t) },
	}
	if u := os.Getenv("BOTRELAY_TEST_SYSTEM_NATS_URL"); u != "" {
		out["system"] = func(*testing.T) string { return u }
	}
	return out
}

// eachServer runs body as a subtest per server of [servers].
func eachServer(t *testing.T, body func(t *testing.T, nc *nats.Conn, js jetstream.JetStream)) {
	for name, url := range servers(t) {
		t.Run(name, func(t *testing.T) {
			nc, js := testenv.Connect(t, url(t))
			body(t, nc, js)
		})
	}
}

// apiCalls counts the JetStream API requests of one kind (CREATE, UPDATE)
// for the topology's streams, by listening on their request subjects.
type apiCalls struct {
	nc   *nats.Conn
	subs map[string]*nats.Subscription
}

func watchAPI(t *testing.T, nc *nats.Conn, topo stream.Topology) *apiCalls {
	t.Helper()
	a := &apiCalls{nc: nc, subs: map[string]*nats.Subscription{}}
	for _, op := range []string{"CREATE", "UPDATE"} {
		for _, s := range []string{topo.OutStream(), topo.DLQStream()} {
			sub, err := nc.SubscribeSync("$JS.API.STREAM." + op + "." + s)
			require.NoError(t, err)
			t.Cleanup(func() { _ = sub.Unsubscribe() })
			a.subs[op+" "+s] = sub
		}
	}
	require.NoError(t, nc.Flush())
	return a
}

// take returns the requests seen since the last call. The server delivers
// a request to this subscription before it answers it, and the flush's
// PONG comes after that delivery, so nothing is missed.
func (a *apiCalls) take(t *testing.T) map[string]int {
	t.Helper()
	require.NoError(t, a.nc.Flush())
	out := map[string]int{}
	for k, sub := range a.subs {
		for {
			if _, err := sub.NextMsg(0); err != nil {
				break
			}
			out[k]++
		}
	}
	return out
}

func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return info
}

func TestEnsure(t *testing.T) {
	eachServer(t, func(t *testing.T, nc *nats.Conn, js jetstream.JetStream) {
		ctx := context.Background()
		topo := testenv.Topology(t, js)
		api := watchAPI(t, nc, topo)

		require.NoError(t, topo.Ensure(ctx, js))
		require.Equal(t, map[string]int{"CREATE " + topo.OutStream(): 1, "CREATE " + topo.DLQStream(): 1}, api.take(t))

		out := streamInfo(t, js, topo.OutStream())
		require.Equal(t, []string{topo.Prefix + ".out.*"}, out.Config.Subjects)
		require.Equal(t, jetstream.WorkQueuePolicy, out.Config.Retention)
		require.Equal(t, jetstream.FileStorage, out.Config.Storage)
		require.Equal(t, jetstream.DiscardNew, out.Config.Discard)
		require.Equal(t, 1, out.Config.Replicas)
		require.Equal(t, 2*time.Minute, out.Config.Duplicates)
		dlq := streamInfo(t, js, topo.DLQStream())
		require.Equal(t, []string{topo.Prefix + ".dlq.*"}, dlq.Config.Subjects)
		require.Equal(t, jetstream.LimitsPolicy, dlq.Config.Retention, "dead letters are kept until purged")
		require.Equal(t, jetstream.FileStorage, dlq.Config.Storage)
		require.Equal(t, 2*time.Minute, dlq.Config.Duplicates)
		require.Equal(t, stream.DefaultLimits().DLQMaxAge, dlq.Config.MaxAge)
		require.Equal(t, int64(64<<20), dlq.Config.MaxBytes, "testenv's limit")
		require.Equal(t, jetstream.DiscardNew, dlq.Config.Discard)
		require.Equal(t, int64(64<<20), out.Config.MaxBytes)
		require.Equal(t, stream.DefaultLimits().OutMaxAge, out.Config.MaxAge)
		require.Equal(t, stream.DefaultLimits().OutMaxMsgsPerRobot, out.Config.MaxMsgsPerSubject)
		require.True(t, out.Config.AllowDirect, "direct lanes read through the direct-get API (one replica)")
		require.False(t, dlq.Config.AllowDirect)

		// Idempotent: a second call (every worker makes one) issues no
		// request that changes anything, and the streams are as they were.
		require.NoError(t, topo.Ensure(ctx, js))
		require.Empty(t, api.take(t))
		again := streamInfo(t, js, topo.OutStream())
		require.Equal(t, out.Created, again.Created)
		require.Equal(t, out.Config, again.Config)
		require.Equal(t, dlq.Config, streamInfo(t, js, topo.DLQStream()).Config)
	})
}

func TestEnsureUpdatesOnlyBotrelaySettings(t *testing.T) {
	eachServer(t, func(t *testing.T, nc *nats.Conn, js jetstream.JetStream) {
		ctx := context.Background()
		topo := testenv.Topology(t, js)
		require.NoError(t, topo.Ensure(ctx, js))

		// An operator caps the outbound stream's message count.
		s, err := js.Stream(ctx, topo.OutStream())
		require.NoError(t, err)
		cfg := s.CachedInfo().Config
		cfg.MaxMsgs = 64 << 20
		_, err = js.UpdateStream(ctx, cfg)
		require.NoError(t, err)
		created := streamInfo(t, js, topo.OutStream()).Created

		// A new release changes the duplicate window.
		api := watchAPI(t, nc, topo)
		topo.DuplicateWindow = 5 * time.Minute
		require.NoError(t, topo.Ensure(ctx, js))
		require.Equal(t, map[string]int{"UPDATE " + topo.OutStream(): 1, "UPDATE " + topo.DLQStream(): 1}, api.take(t))

		out := streamInfo(t, js, topo.OutStream())
		require.Equal(t, created, out.Created, "updated in place, not recreated")
		require.Equal(t, 5*time.Minute, out.Config.Duplicates)
		require.Equal(t, int64(64<<20), out.Config.MaxMsgs, "the operator's limit is kept")
		require.Equal(t, jetstream.WorkQueuePolicy, out.Config.Retention)
		require.Equal(t, 5*time.Minute, streamInfo(t, js, topo.DLQStream()).Config.Duplicates)

		// Drifted subjects are put back; nothing else moves.
		cfg = out.Config
		cfg.Subjects = append(cfg.Subjects, topo.Prefix+".other")
		_, err = js.UpdateStream(ctx, cfg)
		require.NoError(t, err)
		api.take(t)
		require.NoError(t, topo.Ensure(ctx, js))
		require.Equal(t, map[string]int{"UPDATE " + topo.OutStream(): 1}, api.take(t))
		out = streamInfo(t, js, topo.OutStream())
		require.Equal(t, []string{topo.Prefix + ".out.*"}, out.Config.Subjects)
		require.Equal(t, int64(64<<20), out.Config.MaxMsgs)

		require.NoError(t, topo.Ensure(ctx, js))
		require.Empty(t, api.take(t), "settled: no more updates")
	})
}

func TestEnsureRetentionMismatch(t *testing.T) {
	eachServer(t, func(t *testing.T, nc *nats.Conn, js jetstream.JetStream) {
		ctx := context.Background()
		topo := testenv.Topology(t, js)
		// Someone created the outbound stream as a limits stream: the
		// server can't turn it into a work queue in place.
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{
			Name: topo.OutStream(), Subjects: []string{topo.Prefix + ".out.*"}, Storage: jetstream.FileStorage,
		})
		require.NoError(t, err)
		err = topo.Ensure(ctx, js)
		require.ErrorIs(t, err, stream.ErrIncompatible)
		require.ErrorContains(t, err, topo.OutStream())
		require.ErrorContains(t, err, "retention")
	})
}

func TestEnsureRobotConsumer(t *testing.T) {
	eachServer(t, func(t *testing.T, nc *nats.Conn, js jetstream.JetStream) {
		ctx := context.Background()
		topo := testenv.Topology(t, js)
		require.NoError(t, topo.Ensure(ctx, js))

		c, err := topo.EnsureRobotConsumer(ctx, js, "ops", 45*time.Second)
		require.NoError(t, err)
		info, err := c.Info(ctx)
		require.NoError(t, err)
		cfg := info.Config
		require.Equal(t, topo.ConsumerName("ops"), info.Name)
		require.Equal(t, topo.ConsumerName("ops"), cfg.Durable)
		require.Equal(t, topo.OutSubject("ops"), cfg.FilterSubject)
		require.Equal(t, jetstream.AckExplicitPolicy, cfg.AckPolicy)
		require.Equal(t, 1, cfg.MaxAckPending)
		require.Equal(t, 45*time.Second, cfg.AckWait)
		require.Equal(t, -1, cfg.MaxDeliver)
		require.Equal(t, jetstream.DeliverAllPolicy, cfg.DeliverPolicy)

		// Again with another ack wait: the same durable, updated.
		c, err = topo.EnsureRobotConsumer(ctx, js, "ops", time.Minute)
		require.NoError(t, err)
		info, err = c.Info(ctx)
		require.NoError(t, err)
		require.Equal(t, time.Minute, info.Config.AckWait)
		s, err := js.Stream(ctx, topo.OutStream())
		require.NoError(t, err)
		names := s.ConsumerNames(ctx)
		var got []string
		for n := range names.Name() {
			got = append(got, n)
		}
		require.NoError(t, names.Err())
		require.Equal(t, []string{topo.ConsumerName("ops")}, got)

		// It delivers only its robot's messages.
		_, err = js.Publish(ctx, topo.OutSubject("dev"), []byte("d"))
		require.NoError(t, err)
		_, err = js.Publish(ctx, topo.OutSubject("ops"), []byte("o"))
		require.NoError(t, err)
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		require.NoError(t, err)
		require.Equal(t, topo.OutSubject("ops"), m.Subject())
		require.Equal(t, "o", string(m.Data()))
	})
}

func TestEnsureRobotConsumerTakesOverFromSweepConsumer(t *testing.T) {
	eachServer(t, func(t *testing.T, nc *nats.Conn, js jetstream.JetStream) {
		ctx := context.Background()
		topo := testenv.Topology(t, js)
		require.NoError(t, topo.Ensure(ctx, js))
		holder := func(name, robot string) {
			t.Helper()
			_, err := js.CreateOrUpdateConsumer(ctx, topo.OutStream(), jetstream.ConsumerConfig{
				Durable: name, FilterSubject: topo.OutSubject(robot), AckPolicy: jetstream.AckExplicitPolicy,
			})
			require.NoError(t, err)
		}

		// A sweep consumer left behind (a worker killed mid-sweep) gives way.
		require.Equal(t, "unknown_ops", topo.SweepConsumerName("ops"))
		holder(topo.SweepConsumerName("ops"), "ops")
		c, err := topo.EnsureRobotConsumer(ctx, js, "ops", time.Minute)
		require.NoError(t, err)
		require.Equal(t, topo.ConsumerName("ops"), c.CachedInfo().Name)
		_, err = js.Consumer(ctx, topo.OutStream(), topo.SweepConsumerName("ops"))
		require.ErrorIs(t, err, jetstream.ErrConsumerNotFound)

		// Any other consumer on the subject is not botrelay's to delete.
		holder("operator", "dev")
		_, err = topo.EnsureRobotConsumer(ctx, js, "dev", time.Minute)
		require.True(t, stream.IsSubjectTaken(err), "%v", err)
		_, err = js.Consumer(ctx, topo.OutStream(), "operator")
		require.NoError(t, err)
	})
}

func TestPendingRobots(t *testing.T) {
	eachServer(t, func(t *testing.T, nc *nats.Conn, js jetstream.JetStream) {
		ctx := context.Background()
		topo := testenv.Topology(t, js)
		require.NoError(t, topo.Ensure(ctx, js))

		got, err := topo.PendingRobots(ctx, js)
		require.NoError(t, err)
		require.Empty(t, got)

		for robot, n := range map[string]int{"ops": 3, "dev": 1} {
			for range n {
				_, err := js.Publish(ctx, topo.OutSubject(robot), []byte("x"))
				require.NoError(t, err)
			}
		}
		// Dead letters are not pending work.
		_, err = js.Publish(ctx, topo.DLQSubject("qa"), []byte("x"))
		require.NoError(t, err)

		got, err = topo.PendingRobots(ctx, js)
		require.NoError(t, err)
		require.Equal(t, map[string]uint64{"ops": 3, "dev": 1}, got)
	})
}

func TestPendingRobotsNoStream(t *testing.T) {
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js)
	_, err := topo.PendingRobots(context.Background(), js)
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	require.ErrorContains(t, err, topo.OutStream())
}

// The outbound stream gets a consumer limit of its own: the server's
// default (1,000 per stream on nats-server 2.15) would leave every robot
// past the thousandth unserved.
func TestMoreThanAThousandRobotConsumers(t *testing.T) {
	ctx := context.Background()
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(ctx, js))
	s, err := js.Stream(ctx, topo.OutStream())
	require.NoError(t, err)
	require.Equal(t, stream.MaxConsumers, s.CachedInfo().Config.MaxConsumers)
	for i := range 1001 {
		_, err := topo.EnsureRobotConsumer(ctx, js, fmt.Sprintf("r%04d", i), 30*time.Second)
		require.NoError(t, err, "robot %d", i)
	}
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, 1001, info.State.Consumers)
}
