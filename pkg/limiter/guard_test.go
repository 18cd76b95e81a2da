package limiter

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// freshPrefix is a prefix whose Redis state has never existed (no epoch).
func freshPrefix(t *testing.T) string {
	t.Helper()
	p := testPrefix(t)
	rdb := newRedisClient(t)
	require.NoError(t, rdb.Del(context.Background(), p+":epoch").Err())
	return p
}

// With no epoch (a first start, or a Redis that restarted empty), no slot is
// granted for one span; afterwards the limiter works normally. Losing the
// state again (the epoch disappears) starts another quiet span.
func TestRestartGuard(t *testing.T) {
	ctx := context.Background()
	lim := Limit{Max: 3, Window: 250 * time.Millisecond, Margin: 50 * time.Millisecond}
	p := freshPrefix(t)
	l, err := NewRedis(newRedisClient(t), WithPrefix(p))
	require.NoError(t, err)

	d, err := l.Reserve(ctx, "r", lim)
	require.NoError(t, err)
	require.False(t, d.Allowed, "nothing granted while the history is unknown")
	require.False(t, d.CoolingOff)
	require.Greater(t, d.RetryAfter, 250*time.Millisecond)
	require.LessOrEqual(t, d.RetryAfter, 300*time.Millisecond)

	time.Sleep(d.RetryAfter)
	for i := range lim.Max {
		d, err = l.Reserve(ctx, "r", lim)
		require.NoError(t, err)
		require.True(t, d.Allowed, "grant %d after the quiet span", i+1)
	}

	// Redis loses everything (restart without persistence).
	rdb := newRedisClient(t)
	keys, err := rdb.Keys(ctx, p+":*").Result()
	require.NoError(t, err)
	require.NoError(t, rdb.Del(ctx, keys...).Err())
	d, err = l.Reserve(ctx, "other-robot", lim)
	require.NoError(t, err)
	require.False(t, d.Allowed, "every robot waits after the state was lost")
}

func TestRestartGuardOff(t *testing.T) {
	l, err := NewRedis(newRedisClient(t), WithPrefix(freshPrefix(t)), WithRestartGuard(false))
	require.NoError(t, err)
	d, err := l.Reserve(context.Background(), "r", Limit{Max: 1, Window: time.Minute})
	require.NoError(t, err)
	require.True(t, d.Allowed)
}

// With cluster keys the epoch lives in the robot's slot and expires.
func TestRestartGuardClusterKeys(t *testing.T) {
	ctx := context.Background()
	p := freshPrefix(t)
	rdb := newRedisClient(t)
	l, err := NewRedis(rdb, WithPrefix(p), WithClusterKeys())
	require.NoError(t, err)
	robot := "r" + strconv.FormatUint(rand.Uint64(), 36)
	d, err := l.Reserve(ctx, robot, Limit{Max: 1, Window: 100 * time.Millisecond})
	require.NoError(t, err)
	require.False(t, d.Allowed)

	key := l.epochKey(robot)
	require.Equal(t, hashTag(l.windowKey(robot)), hashTag(key))
	ttl, err := rdb.PTTL(ctx, key).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Hour)
	require.NoError(t, rdb.Exists(ctx, p+":epoch").Err())
	n, err := rdb.Exists(ctx, p+":epoch").Result()
	require.NoError(t, err)
	require.Zero(t, n, "no global key in cluster mode")
}
