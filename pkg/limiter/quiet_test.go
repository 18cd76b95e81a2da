package limiter

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
)

// privateLimiter returns a Redis limiter on a private redis-server, with a
// client that retries across the server's restarts, and a recorder of the
// Redis server time of each decision.
func privateLimiter(t *testing.T, srv *testenv.PrivateRedis, opts ...Option) (*Redis, *redis.Client, *decisions) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: 5})
	t.Cleanup(func() { _ = rdb.Close() })
	l, err := NewRedis(rdb, append([]Option{WithPrefix("q")}, opts...)...)
	require.NoError(t, err)
	rec := &decisions{}
	l.observe = rec.add
	return l, rdb, rec
}

// decisions records the Redis server time of each decision.
type decisions struct {
	mu  sync.Mutex
	all []decisionAt
}

type decisionAt struct {
	d  Decision
	at time.Time
}

func (r *decisions) add(_ string, d Decision, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, decisionAt{d, at})
}

func (r *decisions) last() decisionAt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all[len(r.all)-1]
}

// untilGranted calls Reserve every 10ms until it grants and returns the
// Redis time of the first denial and of the grant.
func untilGranted(t *testing.T, l *Redis, rec *decisions, robot string, lim Limit, timeout time.Duration) (first, granted time.Time) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		d, err := l.Reserve(ctx, robot, lim)
		require.NoError(t, err)
		at := rec.last().at
		if i == 0 {
			require.False(t, d.Allowed, "granted at once")
			first = at
		}
		if d.Allowed {
			return first, at
		}
		require.True(t, time.Now().Before(deadline), "no grant within %s", timeout)
		time.Sleep(10 * time.Millisecond)
	}
}

// A robot the platform banned is cooling off when Redis restarts empty: its
// cool-off is gone with the rest. With WithRestartQuiet(cool-off) nothing
// is granted before the quiet time, so the robot is not posted into the
// ban; the old guard (one span) would have granted one span after.
func TestRestartQuietCoversCoolOff(t *testing.T) {
	const coolOff = 1500 * time.Millisecond
	lim := Limit{Max: 3, Window: 200 * time.Millisecond, Margin: 50 * time.Millisecond}
	span := lim.Window + lim.Margin
	tests := []struct {
		name      string
		opts      []Option
		wantQuiet time.Duration
	}{
		{name: "quiet covers the cool-off", opts: []Option{WithRestartQuiet(coolOff)}, wantQuiet: coolOff},
		{name: "quiet shorter than the span", opts: []Option{WithRestartQuiet(time.Millisecond)}, wantQuiet: span},
		{name: "default: one span (posts into the ban)", wantQuiet: span},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			srv := testenv.StartRedis(t)
			l, rdb, rec := privateLimiter(t, srv, tt.opts...)
			require.NoError(t, rdb.Set(ctx, "q:epoch", "0", 0).Err()) // a state complete since long ago
			d, err := l.Reserve(ctx, "r", lim)
			require.NoError(t, err)
			require.True(t, d.Allowed)
			require.NoError(t, l.CoolOff(ctx, "r", coolOff)) // the platform banned it

			srv.Stop()
			srv.Start() // empty: the cool-off and the epoch are gone
			require.Eventually(t, func() bool { return rdb.Ping(ctx).Err() == nil }, 5*time.Second, 10*time.Millisecond)
			st, err := l.Inspect(ctx, "r", lim)
			require.NoError(t, err)
			require.Zero(t, st.CoolOffLeft, "the cool-off is forgotten")
			require.Equal(t, tt.wantQuiet, st.QuietLeft)

			first, granted := untilGranted(t, l, rec, "r", lim, 5*time.Second)
			got := granted.Sub(first)
			require.GreaterOrEqual(t, got, tt.wantQuiet, "granted before the quiet time")
			require.Less(t, got, tt.wantQuiet+500*time.Millisecond, "still held long after the quiet time")
		})
	}
}

func TestWithRestartQuietInvalid(t *testing.T) {
	_, err := NewRedis(newRedisClient(t), WithRestartQuiet(-time.Second))
	require.ErrorIs(t, err, ErrInvalidOption)
}

// Load refuses a Redis whose maxmemory-policy may evict keys, naming the
// policy; noeviction passes.
func TestLoadRefusesEvictionPolicy(t *testing.T) {
	srv := testenv.StartRedis(t)
	l, rdb, _ := privateLimiter(t, srv)
	ctx := context.Background()
	for _, policy := range []string{"noeviction", "volatile-lru", "volatile-ttl", "volatile-random", "allkeys-lru", "allkeys-lfu"} {
		t.Run(policy, func(t *testing.T) {
			require.NoError(t, rdb.ConfigSet(ctx, "maxmemory-policy", policy).Err())
			err := l.Load(ctx)
			if policy == "noeviction" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrEvictionPolicy)
			require.ErrorContains(t, err, "maxmemory-policy is "+policy+"; the limiter needs noeviction")
		})
	}
}

// Redis under a volatile-* policy evicts keys with a TTL (windows,
// cool-offs) and keeps the epoch. The guard compares the eviction count
// recorded in the epoch and starts a quiet time as for a restart: no grant
// for the robot whose window may be gone.
func TestRestartGuardNoticesEvictions(t *testing.T) {
	ctx := context.Background()
	srv := testenv.StartRedis(t)
	l, rdb, rec := privateLimiter(t, srv)
	lim := Limit{Max: 2, Window: time.Second}
	require.NoError(t, rdb.Set(ctx, "q:epoch", "0", 0).Err())
	for range lim.Max {
		d, err := l.Reserve(ctx, "r", lim)
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
	d, err := l.Reserve(ctx, "r", lim)
	require.NoError(t, err)
	require.False(t, d.Allowed, "window full")
	epoch := rdb.Get(ctx, "q:epoch").Val()
	require.True(t, strings.HasPrefix(epoch, "0:"), epoch)

	// Fill Redis past maxmemory with keys that have a TTL, until it evicts.
	require.NoError(t, rdb.ConfigSet(ctx, "maxmemory-policy", "volatile-lru").Err())
	used, err := rdb.Info(ctx, "memory").Result()
	require.NoError(t, err)
	var usedBytes int64
	_, err = fmt.Sscan(infoField(used, "used_memory"), &usedBytes)
	require.NoError(t, err)
	require.NoError(t, rdb.ConfigSet(ctx, "maxmemory", fmt.Sprint(usedBytes+512*1024)).Err())
	value := strings.Repeat("x", 16*1024)
	for i := 0; evictedKeys(t, rdb) == 0; i++ {
		require.Less(t, i, 1000, "no eviction")
		require.NoError(t, rdb.Set(ctx, fmt.Sprintf("filler:%d", i), value, time.Hour).Err())
	}
	require.NoError(t, rdb.ConfigSet(ctx, "maxmemory", "0").Err())
	require.Equal(t, epoch, rdb.Get(ctx, "q:epoch").Val(), "the epoch (no TTL) survived")

	st, err := l.Inspect(ctx, "r", lim)
	require.NoError(t, err)
	require.Equal(t, lim.Window, st.QuietLeft, "Inspect sees the evictions before any Reserve")
	d, err = l.Reserve(ctx, "other", lim)
	require.NoError(t, err)
	require.False(t, d.Allowed, "a robot with an empty window waits too: its window may have been evicted")
	require.Greater(t, d.RetryAfter, lim.Window-100*time.Millisecond)
	first, granted := untilGranted(t, l, rec, "r", lim, 20*time.Second)
	require.GreaterOrEqual(t, granted.Sub(first), lim.Window, "granted inside the quiet time after evictions")
	require.Regexp(t, `^\d+:[0-9a-f]{40}:[1-9]\d*$`, rdb.Get(ctx, "q:epoch").Val(), "a new epoch with the eviction count")
}

// evictedKeys reads INFO stats evicted_keys.
func evictedKeys(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "stats").Result()
	require.NoError(t, err)
	var n int64
	_, err = fmt.Sscan(infoField(info, "evicted_keys"), &n)
	require.NoError(t, err)
	return n
}

// An epoch written by the version that keyed robots by name
// ("<µs>:<run_id>", no eviction count) starts a quiet time: the windows and
// cool-offs under the names are not found under the identities. An
// operator's epoch (no run_id) is still adopted.
func TestRestartGuardUpgradeFromNameKeys(t *testing.T) {
	ctx := context.Background()
	rdb := newRedisClient(t)
	info, err := rdb.Info(ctx, "server").Result()
	require.NoError(t, err)
	runID := infoField(info, "run_id")
	require.Len(t, runID, 40)
	lim := Limit{Max: 1, Window: time.Second}
	tests := []struct {
		name, epoch string
		allowed     bool
	}{
		{name: "older version's epoch", epoch: "1:" + runID},
		{name: "operator's epoch", epoch: "1", allowed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPrefix(t)
			require.NoError(t, rdb.Set(ctx, p+":epoch", tt.epoch, 0).Err())
			l := newTestRedis(t, p)
			d, err := l.Reserve(ctx, "dingtalk-0123456789abcdef01234567", lim)
			require.NoError(t, err)
			require.Equal(t, tt.allowed, d.Allowed)
			require.Regexp(t, `^\d+:`+runID+`:\d+$`, rdb.Get(ctx, p+":epoch").Val())
		})
	}
}
