package limiter

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestNewRedisOptions(t *testing.T) {
	t.Parallel()
	rdb := newRedisClient(t)
	tests := []struct {
		name    string
		rdb     redis.Scripter
		opts    []Option
		wantErr error
		wantPfx string
	}{
		{name: "default prefix", rdb: rdb, wantPfx: DefaultPrefix},
		{name: "custom prefix", rdb: rdb, opts: []Option{WithPrefix("relay:eu")}, wantPfx: "relay:eu"},
		{name: "nil option ignored", rdb: rdb, opts: []Option{nil}, wantPfx: DefaultPrefix},
		{name: "nil client", rdb: nil, wantErr: ErrInvalidOption},
		{name: "empty prefix", rdb: rdb, opts: []Option{WithPrefix("")}, wantErr: ErrInvalidOption},
		{name: "brace in prefix", rdb: rdb, opts: []Option{WithPrefix("a{b")}, wantErr: ErrInvalidOption},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := NewRedis(tc.rdb, tc.opts...)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Nil(t, l)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantPfx+":{r1}:w", l.windowKey("r1"))
			require.Equal(t, tc.wantPfx+":{r1}:cool", l.coolKey("r1"))
		})
	}
}

// TestRedisKeys checks the keys a robot leaves in Redis: two, sharing one
// hash tag, both expiring.
func TestRedisKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	prefix := testPrefix(t)
	rdb := newRedisClient(t)
	l, err := NewRedis(rdb, WithPrefix(prefix))
	require.NoError(t, err)

	const robot = "team-a.popo:7"
	lim := Limit{Max: 3, Window: 300 * time.Millisecond, Margin: 50 * time.Millisecond}
	d, err := l.Reserve(ctx, robot, lim)
	require.NoError(t, err)
	require.True(t, d.Allowed)

	ttl, err := rdb.PTTL(ctx, l.windowKey(robot)).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0))
	require.LessOrEqual(t, ttl, lim.Window+lim.Margin)

	require.NoError(t, l.CoolOff(ctx, robot, 400*time.Millisecond))
	ttl, err = rdb.PTTL(ctx, l.coolKey(robot)).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0))
	require.LessOrEqual(t, ttl, 401*time.Millisecond)

	keys, err := rdb.Keys(ctx, prefix+":*").Result()
	require.NoError(t, err)
	// The robot's two keys, and the one restart-guard epoch of the prefix.
	require.ElementsMatch(t, []string{l.windowKey(robot), l.coolKey(robot), prefix + ":epoch"}, keys)
	keys = []string{l.windowKey(robot), l.coolKey(robot)}
	for _, k := range keys {
		require.Equal(t, robot, hashTag(k), "key %q", k)
	}

	// Idle robots cost nothing: both keys expire.
	require.Eventually(t, func() bool {
		n, err := rdb.Exists(ctx, keys...).Result()
		return err == nil && n == 0
	}, 5*time.Second, 20*time.Millisecond)
}

// TestRedisDeniedReserveWritesNothing checks that neither a full window nor a
// cool-off adds to the log.
func TestRedisDeniedReserveWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	prefix := testPrefix(t)
	rdb := newRedisClient(t)
	l, err := NewRedis(rdb, WithPrefix(prefix))
	require.NoError(t, err)

	lim := Limit{Max: 2, Window: time.Minute}
	for range 5 {
		_, err := l.Reserve(ctx, "r", lim)
		require.NoError(t, err)
	}
	require.EqualValues(t, 2, rdb.ZCard(ctx, l.windowKey("r")).Val())

	require.NoError(t, l.CoolOff(ctx, "c", time.Minute))
	for range 3 {
		d, err := l.Reserve(ctx, "c", lim)
		require.NoError(t, err)
		require.True(t, d.CoolingOff)
	}
	require.EqualValues(t, 0, rdb.Exists(ctx, l.windowKey("c")).Val())
}

func TestRedisUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Nothing listens on port 1.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	l, err := NewRedis(rdb)
	require.NoError(t, err)

	d, err := l.Reserve(ctx, "r", Limit{Max: 20, Window: time.Minute})
	require.ErrorIs(t, err, ErrUnavailable)
	require.Equal(t, Decision{}, d, "never allowed with an error")
	require.ErrorIs(t, l.CoolOff(ctx, "r", time.Minute), ErrUnavailable)
	require.ErrorIs(t, l.Load(ctx), ErrUnavailable)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	d, err = newTestRedis(t, testPrefix(t)).Reserve(cctx, "r", Limit{Max: 20, Window: time.Minute})
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, d.Allowed)
}

// TestRedisCorruptCoolOffFailsClosed checks that a cool-off key this package
// did not write denies with an error rather than allows.
func TestRedisCorruptCoolOffFailsClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	prefix := testPrefix(t)
	rdb := newRedisClient(t)
	l, err := NewRedis(rdb, WithPrefix(prefix))
	require.NoError(t, err)
	require.NoError(t, rdb.Set(ctx, l.coolKey("r"), "banned", time.Minute).Err())

	d, err := l.Reserve(ctx, "r", Limit{Max: 20, Window: time.Minute})
	require.ErrorIs(t, err, ErrUnavailable)
	require.False(t, d.Allowed)

	// CoolOff overwrites it.
	require.NoError(t, l.CoolOff(ctx, "r", time.Second))
	d, err = l.Reserve(ctx, "r", Limit{Max: 20, Window: time.Minute})
	require.NoError(t, err)
	require.True(t, d.CoolingOff)
}

// startPrivateRedis runs a redis-server of its own for tests that flush the
// script cache, which would disturb the other users of the shared one.
func startPrivateRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())

	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	probe := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer func() { _ = probe.Close() }()
	require.Eventually(t, func() bool {
		return probe.Ping(context.Background()).Err() == nil
	}, 10*time.Second, 20*time.Millisecond, "private redis-server did not start")
	return addr
}

// TestRedisRoundTripsAndScriptFlush checks one request per decision and that
// a flushed script cache is refilled (NOSCRIPT → EVAL) without an error.
func TestRedisRoundTripsAndScriptFlush(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr := startPrivateRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	var rt roundTrips
	rdb.AddHook(&rt)

	l, err := NewRedis(rdb, WithPrefix("flush"))
	require.NoError(t, err)
	require.NoError(t, l.Load(ctx))
	require.NoError(t, rdb.Set(ctx, "flush:epoch", "0", 0).Err()) // history known
	lim := Limit{Max: 1000, Window: time.Minute}

	rt.n.Store(0)
	for range 10 {
		d, err := l.Reserve(ctx, "r", lim)
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
	require.EqualValues(t, 10, rt.n.Load(), "one round trip per decision")

	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	rt.n.Store(0)
	d, err := l.Reserve(ctx, "r", lim)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.EqualValues(t, 2, rt.n.Load(), "EVALSHA answered NOSCRIPT, then EVAL")

	rt.n.Store(0)
	d, err = l.Reserve(ctx, "r", lim)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.EqualValues(t, 1, rt.n.Load(), "EVAL cached the script again")

	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	require.NoError(t, l.CoolOff(ctx, "r", time.Minute))
	d, err = l.Reserve(ctx, "r", lim)
	require.NoError(t, err)
	require.True(t, d.CoolingOff)
	require.EqualValues(t, 12, rdb.ZCard(ctx, l.windowKey("r")).Val(), "every grant logged once")
}

// flakyDialer fails the first n dials, then dials for real.
func flakyDialer(n int64) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var dials atomic.Int64
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) <= n {
			return nil, errors.New("injected dial failure")
		}
		return d.DialContext(ctx, network, addr)
	}
}
