package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/ledger"
)

func newRedis(t *testing.T) (*ledger.Redis, *redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { _ = rdb.Close() })
	require.NoError(t, rdb.Ping(context.Background()).Err(), "redis must run at 127.0.0.1:6379")
	prefix := fmt.Sprintf("test-ledger-%s-%d", t.Name(), time.Now().UnixNano())
	return ledger.NewRedis(rdb, prefix, time.Minute), rdb, prefix
}

func TestLedgers(t *testing.T) {
	impls := map[string]func(t *testing.T) ledger.Ledger{
		"memory": func(*testing.T) ledger.Ledger { return ledger.NewMemory() },
		"redis": func(t *testing.T) ledger.Ledger {
			l, _, _ := newRedis(t)
			return l
		},
	}
	for name, mk := range impls {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			l := mk(t)
			s, err := l.Get(ctx, "m1")
			require.NoError(t, err)
			require.Equal(t, ledger.State{}, s)

			t0 := time.UnixMilli(1_700_000_000_000)
			s, err = l.RecordFailure(ctx, "m1", t0)
			require.NoError(t, err)
			require.Equal(t, 1, s.Failures)
			require.True(t, s.FirstAttempt.Equal(t0))

			s, err = l.RecordFailure(ctx, "m1", t0.Add(time.Minute))
			require.NoError(t, err)
			require.Equal(t, 2, s.Failures)
			require.True(t, s.FirstAttempt.Equal(t0), "first attempt is kept")

			s, err = l.RecordWait(ctx, "m1")
			require.NoError(t, err)
			require.Equal(t, 1, s.Waits)
			require.Equal(t, 2, s.Failures, "a wait is not a failure")

			require.NoError(t, l.MarkDelivered(ctx, "m1", "platform-7"))
			s, err = l.Get(ctx, "m1")
			require.NoError(t, err)
			require.Equal(t, ledger.State{Failures: 2, FirstAttempt: s.FirstAttempt, Waits: 1, Delivered: true, MessageID: "platform-7"}, s)

			other, err := l.Get(ctx, "m2")
			require.NoError(t, err)
			require.False(t, other.Delivered, "ids are independent")
		})
	}
}

func TestRedisKeysExpire(t *testing.T) {
	ctx := context.Background()
	l, rdb, prefix := newRedis(t)
	require.NoError(t, l.MarkDelivered(ctx, "x", ""))
	ttl, err := rdb.TTL(ctx, prefix+":ledger:{x}").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0))
	require.LessOrEqual(t, ttl, time.Minute)
}

func TestRedisUnavailable(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	l := ledger.NewRedis(rdb, "x", 0)
	_, err := l.Get(context.Background(), "id")
	require.ErrorIs(t, err, ledger.ErrUnavailable)
	_, err = l.RecordFailure(context.Background(), "id", time.Now())
	require.ErrorIs(t, err, ledger.ErrUnavailable)
	_, err = l.RecordWait(context.Background(), "id")
	require.ErrorIs(t, err, ledger.ErrUnavailable)
	require.ErrorIs(t, l.MarkDelivered(context.Background(), "id", ""), ledger.ErrUnavailable)
	require.ErrorIs(t, l.Announce(context.Background(), []string{"ops"}, time.Minute), ledger.ErrUnavailable)
	_, err = l.Served(context.Background(), "ops")
	require.ErrorIs(t, err, ledger.ErrUnavailable)
}

func TestPresence(t *testing.T) {
	impls := map[string]func(t *testing.T) ledger.Presence{
		"memory": func(*testing.T) ledger.Presence { return ledger.NewMemory() },
		"redis": func(t *testing.T) ledger.Presence {
			l, _, _ := newRedis(t)
			return l
		},
	}
	for name, mk := range impls {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			p := mk(t)
			served := func(robot string) bool {
				t.Helper()
				ok, err := p.Served(ctx, robot)
				require.NoError(t, err)
				return ok
			}
			require.False(t, served("ops"), "nobody announced it")
			require.NoError(t, p.Announce(ctx, nil, time.Minute), "nothing to announce")
			require.NoError(t, p.Announce(ctx, []string{"ops", "dev"}, 300*time.Millisecond))
			require.True(t, served("ops"))
			require.True(t, served("dev"))
			require.False(t, served("qa"))
			// Announced again by another worker: the later ttl counts.
			require.NoError(t, p.Announce(ctx, []string{"dev"}, time.Minute))
			testenv.Eventually(t, 5*time.Second, func() bool { return !served("ops") }, "ops: announcement expires")
			require.True(t, served("dev"))
		})
	}
}

func TestRedisPresenceKeys(t *testing.T) {
	ctx := context.Background()
	l, rdb, prefix := newRedis(t)
	require.NoError(t, l.Announce(ctx, []string{"ops"}, time.Minute))
	ttl, err := rdb.PTTL(ctx, prefix+":served:{ops}").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 50*time.Second)
	require.LessOrEqual(t, ttl, time.Minute)
}
