package limiter

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// redisAddr is the shared Redis every test uses, under its own key prefix.
const redisAddr = "127.0.0.1:6379"

// newRedisClient returns a client of the shared Redis, closed at cleanup.
func newRedisClient(t testing.TB, configure ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: redisAddr}
	for _, c := range configure {
		c(o)
	}
	rdb := redis.NewClient(o)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// testPrefix returns a key prefix unique to this test and run, and deletes
// its keys at cleanup.
func testPrefix(t testing.TB) string {
	t.Helper()
	name := strings.NewReplacer("/", ":", " ", "_", "*", "_", "?", "_", "[", "_", "]", "_").Replace(t.Name())
	prefix := "test:limiter:" + name + ":" + strconv.FormatUint(rand.Uint64(), 36)
	armEpoch(t, prefix)
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
		defer func() { _ = rdb.Close() }()
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+":*", 100).Iterator()
		for iter.Next(ctx) {
			_ = rdb.Del(ctx, iter.Val()).Err()
		}
	})
	return prefix
}

// armEpoch tells the restart guard that the state under prefix is complete
// since long ago, so tests of other behaviour get slots at once.
func armEpoch(t testing.TB, prefix string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer func() { _ = rdb.Close() }()
	require.NoError(t, rdb.Set(context.Background(), prefix+":epoch", "0", 0).Err())
}

// newTestRedis returns a Redis limiter with its own client and the given
// prefix.
func newTestRedis(t testing.TB, prefix string) *Redis {
	t.Helper()
	l, err := NewRedis(newRedisClient(t), WithPrefix(prefix))
	require.NoError(t, err)
	return l
}

// fakeClock is a settable clock for Memory.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// roundTrips is a go-redis hook counting the requests a client sends: one
// per command, one per pipeline.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// hashTag returns the part of key Redis Cluster hashes: the text between the
// first '{' and the first '}' after it when not empty, else the whole key.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}
