package limiter

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// startRedisServer runs a private redis-server (persistence by explicit
// SAVE only) in dir on a free port and returns its address and a stop
// function that kills it. It is this test's own process.
func startRedisServer(t *testing.T, dir string, port int) (addr string, stop func()) {
	t.Helper()
	cmd := exec.Command("redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--dir", dir, "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no")
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "redis-server did not start")
		time.Sleep(10 * time.Millisecond)
	}
	return addr, func() {
		_ = cmd.Process.Kill()
		<-done
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

// A Redis that restarts from a snapshot (RDB, the stock redis.conf default;
// or a promoted replica that was behind) gets its old epoch back but not the
// latest grants. The epoch records the server run (run_id), so the new run
// starts a quiet span instead of granting a whole Max again inside the same
// rolling window.
func TestRestartGuardSnapshotRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	port := freePort(t)
	addr, stop := startRedisServer(t, dir, port)
	defer func() { stop() }()

	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: 5})
	defer func() { _ = rdb.Close() }()
	l, err := NewRedis(rdb, WithPrefix("snap"))
	require.NoError(t, err)
	lim := Limit{Max: 3, Window: 5 * time.Second}

	// The state has existed for long (an operator's epoch, adopted with
	// this run's id by the first decision)...
	require.NoError(t, rdb.Set(ctx, "snap:epoch", "0", 0).Err())
	first := time.Now()
	d, err := l.Reserve(ctx, "r", lim)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	v, err := rdb.Get(ctx, "snap:epoch").Result()
	require.NoError(t, err)
	require.Regexp(t, `^0:[0-9a-f]{40}:0$`, v, "the epoch records the server run and its eviction count")
	// ...is snapshotted, and more grants follow the snapshot.
	require.NoError(t, rdb.Save(ctx).Err())
	for i := 1; i < lim.Max; i++ {
		d, err := l.Reserve(ctx, "r", lim)
		require.NoError(t, err)
		require.True(t, d.Allowed, "grant %d", i+1)
	}

	// Redis crashes and restarts from its last snapshot: one grant of three.
	stop()
	_, stop = startRedisServer(t, dir, port)
	require.Eventually(t, func() bool { return rdb.Ping(ctx).Err() == nil }, 5*time.Second, 10*time.Millisecond)
	n, err := rdb.ZCard(ctx, l.windowKey("r")).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the snapshot holds only the first grant")

	st, err := l.Inspect(ctx, "r", lim)
	require.NoError(t, err)
	require.Equal(t, lim.Window, st.QuietLeft, "Inspect sees the new run before any Reserve")

	d, err = l.Reserve(ctx, "r", lim)
	require.NoError(t, err)
	require.Less(t, time.Since(first), lim.Window, "test too slow to prove anything")
	require.False(t, d.Allowed, "no grant while the restored state may lack grants")
	require.Greater(t, d.RetryAfter, lim.Window-time.Second)
}
