package ledger_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/ledger"
)

// TestPresence holds both registries to one script: who serves what, the
// membership key, unserved robots, leaving workers and expiry.
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
			members := func() *ledger.Members {
				t.Helper()
				m, err := p.Members(ctx)
				require.NoError(t, err)
				return m
			}
			m := members()
			require.Empty(t, m.Workers)
			require.False(t, m.Served("ops"), "nobody announced it")
			require.Empty(t, m.Key())

			require.Error(t, p.Announce(ctx, ledger.Announcement{Robots: []string{"ops"}, TTL: time.Minute}), "a worker id is required")
			require.NoError(t, p.Announce(ctx, ledger.Announcement{Worker: "w1", Robots: []string{"ops", "dev", "ops"}, TTL: 400 * time.Millisecond}))
			require.NoError(t, p.Announce(ctx, ledger.Announcement{Worker: "w2", Robots: []string{"dev"}, TTL: time.Minute,
				Unserved: map[string]string{"dev": "maximum consumers limit reached"}}))
			require.NoError(t, p.Announce(ctx, ledger.Announcement{Worker: "w3", Robots: nil, TTL: time.Minute}), "an empty set")
			m = members()
			require.Equal(t, []ledger.Member{
				{Worker: "w1", Digest: ledger.Digest([]string{"dev", "ops"}), Robots: 2},
				{Worker: "w2", Digest: ledger.Digest([]string{"dev"}), Robots: 1, Unserved: map[string]string{"dev": "maximum consumers limit reached"}},
				{Worker: "w3", Digest: ledger.Digest(nil), Robots: 0},
			}, m.Workers)
			for _, tc := range []struct {
				robot  string
				served bool
				by     []string
			}{
				{"ops", true, []string{"w1"}},
				{"dev", true, []string{"w1", "w2"}},
				{"qa", false, nil},
				{"", false, nil}, // the set's marker is no robot
			} {
				require.Equal(t, tc.served, m.Served(tc.robot), tc.robot)
				require.Equal(t, tc.by, m.ServedBy(tc.robot), tc.robot)
			}
			require.True(t, m.Serves("w1", "ops"))
			require.False(t, m.Serves("w2", "ops"))
			require.False(t, m.Serves("w9", "ops"))
			w, why, ok := m.Unserved("dev")
			require.True(t, ok)
			require.Equal(t, "w2", w)
			require.Equal(t, "maximum consumers limit reached", why)
			_, _, ok = m.Unserved("ops")
			require.False(t, ok)
			key := m.Key()

			// The same announcement again: the membership is unchanged.
			require.NoError(t, p.Announce(ctx, ledger.Announcement{Worker: "w2", Robots: []string{"dev"}, TTL: time.Minute}))
			m = members()
			require.Equal(t, key, m.Key())
			_, _, ok = m.Unserved("dev")
			require.False(t, ok, "w2 serves it now")

			// A leaving worker still counts as serving, but not for ownership.
			require.NoError(t, p.Announce(ctx, ledger.Announcement{Worker: "w2", Robots: []string{"dev"}, TTL: time.Minute, Leaving: true}))
			m = members()
			require.NotEqual(t, key, m.Key())
			require.True(t, m.Served("dev"))
			require.Equal(t, []string{"w1"}, m.ServedBy("dev"))

			// w1's announcement expires: ops is served by nobody.
			testenv.Eventually(t, 5*time.Second, func() bool { return !members().Served("ops") }, "w1 expires")
			m = members()
			require.Len(t, m.Workers, 2)
			require.True(t, m.Served("dev"), "still w2's")
		})
	}
}

// countHook counts the round trips of a client: a command or a pipeline
// each.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// TestRedisPresenceCost measures what presence costs with 100,000 robots:
// the first announcement writes the set (in chunks, one pipeline); every
// later one, and one of another worker with the same set, is two round
// trips; a reader loads each set once, then reads the registry in one.
func TestRedisPresenceCost(t *testing.T) {
	ctx := context.Background()
	_, _, prefix := newRedis(t)
	client := func() (*ledger.Redis, *countHook, *redis.Client) {
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
		t.Cleanup(func() { _ = rdb.Close() })
		h := &countHook{}
		rdb.AddHook(h)
		require.NoError(t, rdb.Ping(ctx).Err())
		h.n.Store(0)
		return ledger.NewRedis(rdb, prefix, time.Minute), h, rdb
	}
	robots := make([]string, 100_000)
	for i := range robots {
		robots[i] = fmt.Sprintf("robot-%05d", i)
	}
	setBytes := func() int64 {
		n, err := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}).MemoryUsage(ctx, prefix+":presence:set:{"+ledger.Digest(robots)+"}").Result()
		require.NoError(t, err)
		return n
	}
	a := ledger.Announcement{Worker: "w1", Robots: robots, TTL: time.Minute}
	w1, h1, rdb := client()
	start := time.Now()
	require.NoError(t, w1.Announce(ctx, a))
	firstTook := time.Since(start)
	first := h1.n.Load()
	require.LessOrEqual(t, first, int64(5), "PEXPIRE, the set's pipeline, the script (EVALSHA, then EVAL and its retry once)")
	n, err := rdb.SCard(ctx, prefix+":presence:set:{"+ledger.Digest(robots)+"}").Result()
	require.NoError(t, err)
	require.Equal(t, int64(len(robots)+1), n, "every robot and the marker")

	start = time.Now()
	for range 3 {
		h1.n.Store(0)
		require.NoError(t, w1.Announce(ctx, a))
		require.Equal(t, int64(2), h1.n.Load(), "steady state: PEXPIRE and the script")
	}
	steadyTook := time.Since(start) / 3
	w2, h2, _ := client()
	a2 := a
	a2.Worker = "w2"
	require.NoError(t, w2.Announce(ctx, a2))
	require.LessOrEqual(t, h2.n.Load(), int64(3), "the set exists: not written again (+ a script load)")

	reader, hr, _ := client()
	start = time.Now()
	m, err := reader.Members(ctx)
	require.NoError(t, err)
	loadTook := time.Since(start)
	loads := hr.n.Load()
	require.Greater(t, loads, int64(2), "the set is read in chunks")
	require.Len(t, m.Workers, 2)
	require.True(t, m.Served("robot-99999"))
	require.Equal(t, []string{"w1", "w2"}, m.ServedBy("robot-00000"))
	hr.n.Store(0)
	m, err = reader.Members(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), hr.n.Load(), "cached: the registry only")
	require.True(t, m.Served("robot-12345"))
	t.Logf("100,000 robots: first announcement %d round trips in %s, then 2 in %s; first read %d in %s, then 1; the set uses %d KiB in Redis",
		first, firstTook.Round(time.Millisecond), steadyTook.Round(10*time.Microsecond), loads, loadTook.Round(time.Millisecond), setBytes()>>10)
}

// A robot set lost from Redis (a restart, an eviction) is written again by
// the next announcement naming it, and the keys expire.
func TestRedisPresenceKeys(t *testing.T) {
	ctx := context.Background()
	l, rdb, prefix := newRedis(t)
	a := ledger.Announcement{Worker: "w1", Robots: []string{"ops", "dev"}, TTL: 30 * time.Second}
	require.NoError(t, l.Announce(ctx, a))
	setKey := prefix + ":presence:set:{" + ledger.Digest(a.Robots) + "}"
	ttl, err := rdb.PTTL(ctx, setKey).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 50*time.Second, "the set outlives the announcement")
	require.LessOrEqual(t, ttl, time.Minute)
	ttl, err = rdb.PTTL(ctx, prefix+":presence:{workers}").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 50*time.Second)
	tmp, err := rdb.Keys(ctx, setKey+":new:*").Result()
	require.NoError(t, err)
	require.Empty(t, tmp, "the chunks were renamed into place")

	require.NoError(t, rdb.Del(ctx, setKey).Err())
	reader := ledger.NewRedis(rdb, prefix, time.Minute)
	_, err = reader.Members(ctx)
	require.ErrorIs(t, err, ledger.ErrSetMissing, "a live worker's set is gone: not taken as serving nothing")
	require.NoError(t, l.Announce(ctx, a))
	m, err := reader.Members(ctx)
	require.NoError(t, err)
	require.True(t, m.Served("dev"))
}

func TestDigest(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []string
		same bool
	}{
		{"order does not matter", []string{"a", "b"}, []string{"b", "a"}, true},
		{"repeats do not matter", []string{"a", "a", "b"}, []string{"a", "b"}, true},
		{"names are not concatenated", []string{"ab", "c"}, []string{"a", "bc"}, false},
		{"a robot more", []string{"a"}, []string{"a", "b"}, false},
		{"empty", nil, []string{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.same, ledger.Digest(tc.a) == ledger.Digest(tc.b))
			require.Len(t, ledger.Digest(tc.a), 32)
		})
	}
}
