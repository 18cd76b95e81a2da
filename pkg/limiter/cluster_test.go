package limiter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
)

// wrappedCluster hides the *redis.ClusterClient type from NewRedis, as an
// application's own wrapper of a cluster client would.
type wrappedCluster struct{ *redis.ClusterClient }

// TestRedisCluster runs the limiter on a real three-master Redis Cluster
// (started by the test; redis-server and redis-cli must be installed). The
// subtests share the cluster and run one after another; each uses its own
// prefix.
func TestRedisCluster(t *testing.T) {
	ctx := context.Background()
	cluster := testenv.StartRedisCluster(t)

	// newLimiter returns a limiter with its own cluster client.
	newLimiter := func(t *testing.T, prefix string, opts ...Option) *Redis {
		t.Helper()
		l, err := NewRedis(cluster.Client(t), append([]Option{WithPrefix(prefix), WithClusterKeys()}, opts...)...)
		require.NoError(t, err)
		return l
	}
	// arm tells the restart guard that robot's state is complete since long
	// ago (its epoch lives in the robot's slot with cluster keys).
	arm := func(t *testing.T, l *Redis, robots ...string) {
		t.Helper()
		rdb := cluster.Client(t)
		for _, r := range robots {
			require.NoError(t, rdb.Set(ctx, l.epochKey(r), "0", 0).Err())
		}
	}
	prefix := func() string { return "test:limiter:cluster:" + strconv.FormatUint(rand.Uint64(), 36) }

	t.Run("robots on every master get exactly Max", func(t *testing.T) {
		l := newLimiter(t, prefix())
		lim := Limit{Max: 3, Window: time.Minute}
		robots := make([]string, 24)
		masters := map[string]int{}
		for i := range robots {
			robots[i] = fmt.Sprintf("team-%d.dingtalk", i)
			masters[cluster.MasterOf(t, l.windowKey(robots[i]))]++
		}
		t.Logf("robots per master: %v", masters)
		require.GreaterOrEqual(t, len(masters), 2, "robots spread over masters")
		arm(t, l, robots...)

		for _, r := range robots {
			for i := range lim.Max {
				d, err := l.Reserve(ctx, r, lim)
				require.NoError(t, err, "no CROSSSLOT for %s", r)
				require.True(t, d.Allowed, "%s grant %d", r, i+1)
			}
			d, err := l.Reserve(ctx, r, lim)
			require.NoError(t, err)
			require.False(t, d.Allowed, "%s is full", r)
			require.False(t, d.CoolingOff)
			require.Greater(t, d.RetryAfter, 50*time.Second)
		}

		// Each robot's keys live on the master owning its slot.
		for _, r := range robots[:3] {
			direct := redis.NewClient(&redis.Options{Addr: cluster.MasterOf(t, l.windowKey(r))})
			n, err := direct.ZCard(ctx, l.windowKey(r)).Result()
			_ = direct.Close()
			require.NoError(t, err)
			require.Equal(t, int64(lim.Max), n)
		}
	})

	t.Run("rolling window across clients", func(t *testing.T) {
		const (
			callers = 6
			maxN    = 10
			window  = 200 * time.Millisecond
			run     = 1500 * time.Millisecond
		)
		lim := Limit{Max: maxN, Window: window}
		p := prefix()
		var (
			mu     sync.Mutex
			grants []time.Time
		)
		ls := make([]*Redis, callers)
		for i := range ls {
			ls[i] = newLimiter(t, p)
			ls[i].observe = func(_ string, d Decision, at time.Time) {
				if d.Allowed {
					mu.Lock()
					grants = append(grants, at)
					mu.Unlock()
				}
			}
		}
		arm(t, ls[0], "hammered")

		runCtx, cancel := context.WithTimeout(ctx, run)
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for _, l := range ls {
			wg.Go(func() {
				for runCtx.Err() == nil {
					d, err := l.Reserve(runCtx, "hammered", lim)
					if err != nil {
						if runCtx.Err() == nil {
							errs <- err
						}
						return
					}
					if !d.Allowed && sleepCtx(runCtx, d.RetryAfter) != nil {
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}

		mu.Lock()
		defer mu.Unlock()
		sort.Slice(grants, func(i, j int) bool { return grants[i].Before(grants[j]) })
		for i := 0; i+maxN < len(grants); i++ {
			require.GreaterOrEqual(t, grants[i+maxN].Sub(grants[i]), window,
				"grants %d and %d: %d grants in one window", i, i+maxN, maxN+1)
		}
		possible := maxN * int((run+window-1)/window)
		t.Logf("%d grants of %d possible", len(grants), possible)
		require.GreaterOrEqual(t, float64(len(grants))/float64(possible), 0.9, "the limiter wastes slots")
	})

	t.Run("cool-off is seen through another client", func(t *testing.T) {
		p := prefix()
		a, b := newLimiter(t, p), newLimiter(t, p)
		arm(t, a, "banned", "free")
		require.NoError(t, a.CoolOff(ctx, "banned", time.Minute))
		d, err := b.Reserve(ctx, "banned", Limit{Max: 20, Window: time.Minute})
		require.NoError(t, err)
		require.False(t, d.Allowed)
		require.True(t, d.CoolingOff)
		require.Greater(t, d.RetryAfter, 50*time.Second)

		d, err = b.Reserve(ctx, "free", Limit{Max: 20, Window: time.Minute})
		require.NoError(t, err)
		require.True(t, d.Allowed, "other robots are not cooled off")
	})

	t.Run("Load loads the scripts on every master", func(t *testing.T) {
		rdb := cluster.Client(t)
		require.NoError(t, rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return m.ScriptFlush(ctx).Err()
		}))
		l, err := NewRedis(rdb, WithPrefix(prefix()))
		require.NoError(t, err)
		require.NoError(t, l.Load(ctx))

		var (
			mu      sync.Mutex
			masters int
		)
		require.NoError(t, rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			ok, err := m.ScriptExists(ctx, reserveScript.Hash(), coolOffScript.Hash()).Result()
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			masters++
			if ok[0] && ok[1] {
				return nil
			}
			return fmt.Errorf("scripts on %s: %v", m.Options().Addr, ok)
		}))
		require.Equal(t, len(cluster.Addrs), masters)
	})

	t.Run("restart guard: a flushed master makes only its robots wait", func(t *testing.T) {
		l := newLimiter(t, prefix())
		lim := Limit{Max: 5, Window: 300 * time.Millisecond, Margin: 50 * time.Millisecond}
		// Two robots on different masters.
		lost := "robot-lost"
		lostMaster := cluster.MasterOf(t, l.windowKey(lost))
		kept := ""
		for i := 0; kept == ""; i++ {
			if r := fmt.Sprintf("robot-kept-%d", i); cluster.MasterOf(t, l.windowKey(r)) != lostMaster {
				kept = r
			}
		}
		arm(t, l, lost, kept)
		for _, r := range []string{lost, kept} {
			d, err := l.Reserve(ctx, r, lim)
			require.NoError(t, err)
			require.True(t, d.Allowed, r)
		}

		// The master owning lost restarts empty.
		direct := redis.NewClient(&redis.Options{Addr: lostMaster})
		require.NoError(t, direct.FlushAll(ctx).Err())
		_ = direct.Close()

		d, err := l.Reserve(ctx, lost, lim)
		require.NoError(t, err)
		require.False(t, d.Allowed, "the robot whose history was lost waits")
		require.False(t, d.CoolingOff)
		require.Greater(t, d.RetryAfter, 300*time.Millisecond)
		require.LessOrEqual(t, d.RetryAfter, 350*time.Millisecond)
		wait := d.RetryAfter

		d, err = l.Reserve(ctx, kept, lim)
		require.NoError(t, err)
		require.True(t, d.Allowed, "a robot on another master is unaffected")

		time.Sleep(wait)
		d, err = l.Reserve(ctx, lost, lim)
		require.NoError(t, err)
		require.True(t, d.Allowed, "granted again after one span")
	})

	t.Run("NewRedis turns cluster keys on for a ClusterClient", func(t *testing.T) {
		p := prefix()
		l, err := NewRedis(cluster.Client(t), WithPrefix(p))
		require.NoError(t, err)
		require.Equal(t, p+":{r}:epoch", l.epochKey("r"))
		arm(t, l, "r")
		d, err := l.Reserve(ctx, "r", Limit{Max: 1, Window: time.Minute})
		require.NoError(t, err)
		require.True(t, d.Allowed)
	})

	// Without cluster keys the restart guard's one epoch key lies in another
	// slot than the robot's keys: Redis Cluster refuses the script. This is
	// why WithClusterKeys exists (and why NewRedis sets it itself for a
	// *redis.ClusterClient); a wrapped cluster client needs it spelt out.
	t.Run("a global epoch key fails with CROSSSLOT", func(t *testing.T) {
		l, err := NewRedis(wrappedCluster{cluster.Client(t)}, WithPrefix(prefix()))
		require.NoError(t, err)
		d, err := l.Reserve(ctx, "r", Limit{Max: 1, Window: time.Minute})
		require.ErrorIs(t, err, ErrUnavailable)
		require.ErrorContains(t, err, "CROSSSLOT")
		require.False(t, d.Allowed)

		l, err = NewRedis(wrappedCluster{cluster.Client(t)}, WithPrefix(prefix()), WithClusterKeys())
		require.NoError(t, err)
		arm(t, l, "r")
		d, err = l.Reserve(ctx, "r", Limit{Max: 1, Window: time.Minute})
		require.NoError(t, err)
		require.True(t, d.Allowed)
	})

	t.Run("guard off needs no epoch key", func(t *testing.T) {
		l, err := NewRedis(wrappedCluster{cluster.Client(t)}, WithPrefix(prefix()), WithRestartGuard(false))
		require.NoError(t, err)
		d, err := l.Reserve(ctx, "r", Limit{Max: 1, Window: time.Minute})
		require.NoError(t, err)
		require.True(t, d.Allowed)
	})
}
