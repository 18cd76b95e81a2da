// Package testenv gives integration tests real servers: a JetStream server
// (embedded, or the one named by BOTRELAY_TEST_NATS_URL, which CI points at
// the machine's nats-server 2.9 to prove the minimum version), the machine's
// Redis, and names that keep parallel tests apart; and the small helpers
// the tests of several packages share (helpers.go).
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/stream"
)

// RedisAddr is the Redis the tests use: BOTRELAY_TEST_REDIS_ADDR or 127.0.0.1:6379.
func RedisAddr() string {
	if a := os.Getenv("BOTRELAY_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// Unique returns a short random token for names.
func Unique() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// StartNATS starts an embedded JetStream server with file storage in a
// temporary directory, shut down at cleanup.
func StartNATS(t testing.TB) *server.Server {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	s, err := server.NewServer(opts)
	require.NoError(t, err)
	go s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second), "embedded nats-server did not start")
	t.Cleanup(s.Shutdown)
	return s
}

// NATSURL returns BOTRELAY_TEST_NATS_URL, or the URL of a fresh embedded server.
func NATSURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("BOTRELAY_TEST_NATS_URL"); u != "" {
		return u
	}
	return StartNATS(t).ClientURL()
}

// Connect opens a NATS connection to url, closed at cleanup.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	require.NoError(t, err, "connect to NATS at %s", url)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return nc, js
}

// Topology returns a topology with a prefix unique to this test; its
// streams are deleted at cleanup.
func Topology(t testing.TB, js jetstream.JetStream) stream.Topology {
	t.Helper()
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, t.Name())
	if len(name) > 16 {
		name = name[len(name)-16:]
	}
	// Small limits: a stream's MaxBytes is reserved on the server's
	// storage, and tests share servers.
	topo := stream.Topology{Prefix: "t" + name + Unique(), Limits: stream.Limits{OutMaxBytes: 64 << 20, DLQMaxBytes: 64 << 20}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, topo.OutStream())
		_ = js.DeleteStream(ctx, topo.DLQStream())
	})
	return topo
}

// Redis returns a client of the test Redis and a key prefix unique to this
// test; keys under it are deleted at cleanup.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: RedisAddr()})
	ctx := context.Background()
	require.NoError(t, rdb.Ping(ctx).Err(), "Redis must run at %s (see .ci/run)", RedisAddr())
	prefix := "test:" + Unique()
	t.Cleanup(func() {
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			_ = rdb.Del(ctx, keys...).Err()
		}
		_ = rdb.Close()
	})
	return rdb, prefix
}

// Eventually polls cond every 20ms until it is true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RestartableNATS is an embedded JetStream server a test may shut down and
// start again on the same port with the same store, as a production server
// restarts.
type RestartableNATS struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

// StartRestartableNATS starts an embedded JetStream server on a free port.
func StartRestartableNATS(t testing.TB) *RestartableNATS {
	t.Helper()
	r := &RestartableNATS{t: t, opts: server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true}}
	r.Start()
	r.opts.Port = r.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(r.Stop)
	return r
}

// URL is the server's client URL, stable across restarts.
func (r *RestartableNATS) URL() string { return r.srv.ClientURL() }

// Start starts the server (again).
func (r *RestartableNATS) Start() {
	r.t.Helper()
	opts := r.opts
	s, err := server.NewServer(&opts)
	require.NoError(r.t, err)
	go s.Start()
	require.True(r.t, s.ReadyForConnections(10*time.Second), "embedded nats-server did not start")
	r.srv = s
}

// Stop shuts the server down and waits for it to finish.
func (r *RestartableNATS) Stop() {
	if r.srv != nil {
		r.srv.Shutdown()
		r.srv.WaitForShutdown()
	}
}
