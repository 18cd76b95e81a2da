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

// Every stored message is announced headers-only on its robot's work
// subject, also on a stream created before botrelay asked for it (Ensure
// updates it), and the consumer limit of such a stream is raised.
func TestWorkAnnouncements(t *testing.T) {
	eachServer(t, func(t *testing.T, nc *nats.Conn, js jetstream.JetStream) {
		{
			ctx := context.Background()
			topo := testenv.Topology(t, js)
			// A stream as an older botrelay made it: no RePublish, the
			// server's consumer limit.
			_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: topo.OutStream(), Subjects: []string{topo.OutSubject("*")},
				Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, MaxMsgs: -1, MaxMsgsPerSubject: 100})
			require.NoError(t, err)
			require.NoError(t, topo.Ensure(ctx, js))
			s, err := js.Stream(ctx, topo.OutStream())
			require.NoError(t, err)
			cfg := s.CachedInfo().Config
			announces, err := topo.Announces(ctx, js)
			require.NoError(t, err)
			if info, err := js.AccountInfo(ctx); err == nil && info.API.Level == 0 {
				// nats-server 2.9 (API level 0) can change neither in place:
				// the stream keeps its own (and 2.9 has no consumer cap).
				require.Equal(t, -1, cfg.MaxConsumers)
				require.False(t, announces)
				require.NoError(t, js.DeleteStream(ctx, topo.OutStream()))
				require.NoError(t, topo.Ensure(ctx, js))
				s, err = js.Stream(ctx, topo.OutStream())
				require.NoError(t, err)
				cfg = s.CachedInfo().Config
				announces, err = topo.Announces(ctx, js)
				require.NoError(t, err)
			}
			require.Equal(t, stream.MaxConsumers, cfg.MaxConsumers)
			require.True(t, cfg.AllowDirect, "set in place, or at the re-creation on 2.9")
			require.True(t, announces)
			require.True(t, cfg.RePublish.HeadersOnly)

			sub, err := nc.SubscribeSync(topo.WorkSubjects())
			require.NoError(t, err)
			require.NoError(t, nc.Flush())
			for _, robot := range []string{"ops", "dev", "ops"} {
				_, err := js.Publish(ctx, topo.OutSubject(robot), []byte("a body the announcement leaves out"))
				require.NoError(t, err)
			}
			var got []string
			for range 3 {
				m, err := sub.NextMsg(2 * time.Second)
				require.NoError(t, err)
				require.Empty(t, m.Data, "headers only")
				require.Equal(t, topo.OutSubject(topo.RobotFromSubject(m.Subject)), m.Header.Get(jetstream.SubjectHeader))
				got = append(got, topo.RobotFromSubject(m.Subject))
			}
			require.Equal(t, []string{"ops", "dev", "ops"}, got)
			_, err = sub.NextMsg(200 * time.Millisecond)
			require.ErrorIs(t, err, nats.ErrTimeout, "one announcement per message")

			// A second Ensure changes nothing.
			require.NoError(t, topo.Ensure(ctx, js))
			info, err := s.Info(ctx)
			require.NoError(t, err)
			require.Equal(t, cfg, info.Config)
		}
	})
}

// A lane's consumer is deleted by the server once idle for its
// InactiveThreshold (durables honour it from nats-server 2.9), and
// recreated it starts at the first unacknowledged message.
func TestLaneConsumerExpiresWhenIdle(t *testing.T) {
	eachServer(t, func(t *testing.T, _ *nats.Conn, js jetstream.JetStream) {
		{
			ctx := context.Background()
			topo := testenv.Topology(t, js)
			require.NoError(t, topo.Ensure(ctx, js))
			for _, s := range []string{"one", "two"} {
				_, err := js.Publish(ctx, topo.OutSubject("ops"), []byte(s))
				require.NoError(t, err)
			}
			// A consumer as an older worker made it (file storage, no
			// threshold) becomes a lane consumer.
			_, err := topo.EnsureRobotConsumer(ctx, js, "ops", 30*time.Second)
			require.NoError(t, err)
			c, err := topo.EnsureLaneConsumer(ctx, js, "ops", 30*time.Second, time.Second)
			require.NoError(t, err)
			require.Equal(t, time.Second, c.CachedInfo().Config.InactiveThreshold)
			m, err := c.Next(jetstream.FetchMaxWait(time.Second))
			require.NoError(t, err)
			require.Equal(t, "one", string(m.Data()))
			require.NoError(t, m.DoubleAck(ctx))
			testenv.Eventually(t, 10*time.Second, func() bool {
				_, err := js.Consumer(ctx, topo.OutStream(), topo.ConsumerName("ops"))
				return err != nil
			}, "idle lane consumer not deleted")
			c, err = topo.EnsureLaneConsumer(ctx, js, "ops", 30*time.Second, time.Second)
			require.NoError(t, err)
			require.True(t, c.CachedInfo().Config.MemoryStorage)
			m, err = c.Next(jetstream.FetchMaxWait(time.Second))
			require.NoError(t, err)
			require.Equal(t, "two", string(m.Data()))
		}
	})
}
