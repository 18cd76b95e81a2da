package gate_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/gate"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
)

// TestClusterOneSlot runs the combined script on a real three-master Redis
// Cluster (started by the test): with the ledger's entries tagged by the
// robots' limiter keys, robots on every master claim and reserve in one
// script without CROSSSLOT, each getting exactly its Max, the restart
// guard's per-robot epoch (a fourth key) included; without the tags the
// gate refuses before sending anything (ErrSplit), and the two calls still
// work.
func TestClusterOneSlot(t *testing.T) {
	ctx := context.Background()
	cluster := testenv.StartRedisCluster(t)
	prefix := "test:gate:cluster:" + strconv.FormatUint(rand.Uint64(), 36)
	rdb := cluster.Client(t)

	robots := make([]string, 12)
	tags := map[string]string{}
	masters := map[string]bool{}
	for i := range robots {
		robots[i] = fmt.Sprintf("r%02d", i)
		tags[robots[i]] = fmt.Sprintf("team-%d.dingtalk", i)
		masters[cluster.MasterOf(t, "{"+tags[robots[i]]+"}")] = true
	}
	require.GreaterOrEqual(t, len(masters), 2, "robots spread over masters")
	lim := limiter.Limit{Max: 2, Window: time.Minute}

	t.Run("tagged entries: one script per message", func(t *testing.T) {
		led := ledger.NewRedis(rdb, prefix+":a", time.Hour).WithHashTag(ledger.NewRobotTags(tags).Tag)
		l, err := limiter.NewRedis(rdb, limiter.WithPrefix(prefix+":a"), limiter.WithRestartGuard(false))
		require.NoError(t, err)
		g := gate.New(led, l)
		require.NotNil(t, g)
		require.NoError(t, g.Load(ctx))
		for _, robot := range robots {
			key := robot + "/m"
			require.Equal(t, cluster.MasterOf(t, "{"+tags[robot]+"}"), cluster.MasterOf(t, led.Key(key)), "entry in the robot's slot")
			var got []bool
			for i := range 3 {
				k := fmt.Sprintf("%s/m%d", robot, i)
				r, err := g.ClaimReserve(ctx, gate.Request{Key: k, Holder: "w1", Lease: time.Minute, Robot: tags[robot], Limit: lim, HoldMax: time.Second})
				require.NoError(t, err, "no CROSSSLOT for %s", robot)
				require.Equal(t, ledger.Claimed, r.Claim)
				require.True(t, r.Reserved)
				got = append(got, r.Decision.Allowed)
			}
			require.Equal(t, []bool{true, true, false}, got, "exactly Max for %s", robot)
			// The recording calls find the tagged entry.
			require.NoError(t, led.MarkDelivered(ctx, robot+"/m0", "w1", "x"))
			r, err := g.ClaimReserve(ctx, gate.Request{Key: robot + "/m0", Holder: "w1", Lease: time.Minute, Robot: tags[robot], Limit: lim})
			require.NoError(t, err)
			require.Equal(t, ledger.AlreadyDelivered, r.Claim)
			require.False(t, r.Reserved)
		}
	})

	t.Run("restart guard's epoch in the slot too", func(t *testing.T) {
		led := ledger.NewRedis(rdb, prefix+":b", time.Hour).WithHashTag(ledger.NewRobotTags(tags).Tag)
		l, err := limiter.NewRedis(rdb, limiter.WithPrefix(prefix+":b"))
		require.NoError(t, err)
		g := gate.New(led, l)
		for _, robot := range robots {
			r, err := g.ClaimReserve(ctx, gate.Request{Key: robot + "/m", Holder: "w1", Lease: time.Minute, Robot: tags[robot], Limit: lim, HoldMax: time.Second})
			require.NoError(t, err, "no CROSSSLOT for %s", robot)
			require.True(t, r.Reserved)
			// A new epoch: the guard holds the robot for its quiet time.
			require.False(t, r.Decision.Allowed)
			require.Greater(t, r.Decision.RetryAfter, 50*time.Second)
		}
	})

	t.Run("untagged entries: refused before sending, two calls work", func(t *testing.T) {
		led := ledger.NewRedis(rdb, prefix+":c", time.Hour)
		l, err := limiter.NewRedis(rdb, limiter.WithPrefix(prefix+":c"), limiter.WithRestartGuard(false))
		require.NoError(t, err)
		g := gate.New(led, l)
		_, err = g.ClaimReserve(ctx, gate.Request{Key: "r00/m", Holder: "w1", Lease: time.Minute, Robot: tags["r00"], Limit: lim})
		require.True(t, errors.Is(err, gate.ErrSplit), "got %v", err)
		require.True(t, gate.Fallback(err))
		st, err := led.Get(ctx, "r00/m")
		require.NoError(t, err)
		require.Equal(t, ledger.State{}, st, "nothing was sent")
		c, _, err := led.Claim(ctx, "r00/m", "w1", time.Minute, false)
		require.NoError(t, err)
		require.Equal(t, ledger.Claimed, c)
		d, err := l.Reserve(ctx, tags["r00"], lim)
		require.NoError(t, err)
		require.True(t, d.Allowed)
	})
}
