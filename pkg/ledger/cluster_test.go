package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/ledger"
)

// TestRedisCluster runs the ledger on a real three-master Redis Cluster
// (started by the test): every call is a script on the one key of a message,
// so ids in any slot work, and concurrent writers through different clients
// count exactly.
func TestRedisCluster(t *testing.T) {
	ctx := context.Background()
	cluster := testenv.StartRedisCluster(t)
	const prefix = "test-ledger-cluster"
	l := ledger.NewRedis(cluster.Client(t), prefix, time.Minute)
	key := l.Key

	ids := make([]string, 12)
	masters := map[string]bool{}
	for i := range ids {
		ids[i] = fmt.Sprintf("msg-%d", i)
		masters[cluster.MasterOf(t, key(ids[i]))] = true
	}
	require.GreaterOrEqual(t, len(masters), 2, "ids spread over masters")

	t0 := time.UnixMilli(1_700_000_000_000)
	for _, id := range ids {
		s, err := l.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, ledger.State{}, s)

		c, _, err := l.Claim(ctx, id, "w1", time.Minute, false)
		require.NoError(t, err, "no CROSSSLOT for %s", id)
		require.Equal(t, ledger.Claimed, c)
		s, err = l.RecordFailure(ctx, id, "w1", t0)
		require.NoError(t, err, "no CROSSSLOT for %s", id)
		require.Equal(t, 1, s.Failures)
		s, err = l.RecordFailure(ctx, id, "w1", t0.Add(time.Minute))
		require.NoError(t, err)
		require.Equal(t, 2, s.Failures)
		require.True(t, s.FirstAttempt.Equal(t0), "first attempt is kept")

		s, err = l.RecordWait(ctx, id, "w1", time.Second)
		require.NoError(t, err)
		require.Equal(t, 1, s.Waits)

		require.NoError(t, l.MarkDelivered(ctx, id, "w1", "platform-"+id))
		s, err = l.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, ledger.State{Failures: 2, FirstAttempt: s.FirstAttempt, Waits: 1, Waited: time.Second, Delivered: true, MessageID: "platform-" + id}, s)
		require.True(t, s.FirstAttempt.Equal(t0))
	}

	// The entry lives, with its TTL, on the master owning the id's slot.
	for _, id := range ids[:3] {
		direct := redis.NewClient(&redis.Options{Addr: cluster.MasterOf(t, key(id))})
		ttl, err := direct.PTTL(ctx, key(id)).Result()
		_ = direct.Close()
		require.NoError(t, err)
		require.Greater(t, ttl, time.Duration(0))
		require.LessOrEqual(t, ttl, time.Minute)
	}

	// Workers with their own cluster clients record failures of one
	// message at once: none is lost.
	const workers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		w := ledger.NewRedis(cluster.Client(t), prefix, time.Minute)
		wg.Go(func() {
			for range each {
				if _, err := w.RecordFailure(ctx, "contended", "w", t0); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	s, err := l.Get(ctx, "contended")
	require.NoError(t, err)
	require.Equal(t, workers*each, s.Failures)

	// Presence: the registry's keys share a slot, each robot set's
	// write (chunks, then a rename) shares another; a second ledger (another
	// worker) reads both workers' sets.
	require.NoError(t, l.Announce(ctx, ledger.Announcement{Worker: "w1", Robots: ids, TTL: time.Minute}), "no CROSSSLOT")
	other := ledger.NewRedis(cluster.Client(t), prefix, time.Minute)
	require.NoError(t, other.Announce(ctx, ledger.Announcement{Worker: "w2", Robots: []string{"solo"}, TTL: time.Minute}), "no CROSSSLOT")
	for _, reader := range []*ledger.Redis{l, other, ledger.NewRedis(cluster.Client(t), prefix, time.Minute)} {
		m, err := reader.Members(ctx)
		require.NoError(t, err, "no CROSSSLOT")
		require.Len(t, m.Workers, 2)
		for _, id := range ids {
			require.Equal(t, []string{"w1"}, m.ServedBy(id), id)
		}
		require.Equal(t, []string{"w2"}, m.ServedBy("solo"))
		require.False(t, m.Served("nobody"))
	}
}
