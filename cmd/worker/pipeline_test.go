package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
)

// countHook counts the EVALSHA commands a client sends alone and in
// pipelines (connection set-up commands aside).
type countHook struct{ single, piped, pipelines atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "evalsha" {
			h.single.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		n := 0
		for _, c := range cmds {
			if c.Name() == "evalsha" {
				n++
			}
		}
		if n > 0 {
			h.pipelines.Add(1)
			h.piped.Add(int64(n))
		}
		return next(ctx, cmds)
	}
}

// With --redis-autopipeline (the default) a single Redis's client is its
// autopipeliner: concurrent scripts go out in pipelines, none alone, each
// with its own answer. Off, or on a Cluster, the client is the one given.
func TestRedisAutopipeline(t *testing.T) {
	_, prefix := testenv.Redis(t)
	opts := func() *redis.UniversalOptions {
		return &redis.UniversalOptions{Addrs: []string{testenv.RedisAddr()}, MaxRetries: 1}
	}
	t.Run("on: concurrent scripts share pipelines", func(t *testing.T) {
		o := opts()
		base := redis.NewUniversalClient(o)
		t.Cleanup(func() { _ = base.Close() })
		rdb, closeIt, err := pipelined(o, base, true)
		require.NoError(t, err)
		t.Cleanup(closeIt)
		ap, ok := rdb.(*redis.AutoPipeliner)
		require.True(t, ok, "%T", rdb)
		require.Equal(t, 1, o.MaxRetries, "the given options are not changed")
		h := &countHook{}
		ap.AddHook(h) // on the autopipeliner's own client

		incr := redis.NewScript(`return redis.call('INCRBY', KEYS[1], ARGV[1])`)
		require.NoError(t, incr.Load(context.Background(), base).Err())
		const n = 200
		key := prefix + ":ap"
		got := make([]int64, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				v, err := incr.EvalSha(context.Background(), rdb, []string{fmt.Sprintf("%s:%d", key, i)}, i+1).Int64()
				if err == nil {
					got[i] = v
				}
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			require.Equal(t, int64(i+1), got[i], "script %d's own answer", i)
		}
		t.Logf("alone %d, piped %d in %d pipelines", h.single.Load(), h.piped.Load(), h.pipelines.Load())
		require.Equal(t, int64(n), h.single.Load()+h.piped.Load(), "every script sent once")
		require.Less(t, h.single.Load()+h.pipelines.Load(), int64(n)/2, "pipelines held many scripts (%d requests for %d scripts)", h.single.Load()+h.pipelines.Load(), n)
	})
	t.Run("its client never retries a batch", func(t *testing.T) {
		o := opts()
		own := pipelineOptions(o)
		require.Equal(t, -1, own.MaxRetries, "a retried pipeline runs every script of it again")
		require.Equal(t, 1, own.DialerRetries)
		require.Equal(t, o.Addrs, own.Addrs)
		require.Equal(t, 1, o.MaxRetries, "the given options are not changed")
	})
	t.Run("off: the client given", func(t *testing.T) {
		o := opts()
		base := redis.NewUniversalClient(o)
		t.Cleanup(func() { _ = base.Close() })
		rdb, _, err := pipelined(o, base, false)
		require.NoError(t, err)
		require.Same(t, base, rdb)
	})
	t.Run("cluster: the client given", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0") // never dialled
		require.NoError(t, err)
		t.Cleanup(func() { _ = ln.Close() })
		o := &redis.UniversalOptions{Addrs: []string{ln.Addr().String()}, IsClusterMode: true}
		base := redis.NewUniversalClient(o)
		t.Cleanup(func() { _ = base.Close() })
		rdb, _, err := pipelined(o, base, true)
		require.NoError(t, err)
		require.Same(t, base, rdb)
	})
}
