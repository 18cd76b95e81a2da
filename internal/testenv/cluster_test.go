package testenv

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestStartRedisCluster(t *testing.T) {
	var addrs []string
	t.Run("running", func(t *testing.T) {
		start := time.Now()
		c := StartRedisCluster(t)
		t.Logf("%s formed in %v", c, time.Since(start))
		addrs = c.Addrs
		require.Len(t, c.Addrs, 3)
		ctx := context.Background()

		for _, addr := range c.Addrs {
			rdb := redis.NewClient(&redis.Options{Addr: addr})
			info, err := rdb.ClusterInfo(ctx).Result()
			_ = rdb.Close()
			require.NoError(t, err)
			require.Contains(t, info, "cluster_state:ok")
			require.Contains(t, info, "cluster_known_nodes:3")
		}

		// Keys spread over the three masters, and the client follows them.
		rdb := c.Client(t)
		owners := map[string]bool{}
		for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
			require.NoError(t, rdb.Set(ctx, k, k, time.Minute).Err())
			v, err := rdb.Get(ctx, k).Result()
			require.NoError(t, err)
			require.Equal(t, k, v)
			owner := c.MasterOf(t, k)
			require.Contains(t, c.Addrs, owner)
			owners[owner] = true

			direct := redis.NewClient(&redis.Options{Addr: owner})
			v, err = direct.Get(ctx, k).Result()
			_ = direct.Close()
			require.NoError(t, err, "%q lives on %s", k, owner)
			require.Equal(t, k, v)
		}
		require.Greater(t, len(owners), 1, "keys spread over masters")

		err := rdb.MSet(ctx, "a", "1", "b", "2").Err()
		require.Error(t, err)
		require.True(t, strings.Contains(err.Error(), "CROSSSLOT"), "a real cluster refuses keys of two slots: %v", err)
	})
	for _, addr := range addrs {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
		}
		require.Error(t, err, "node %s is stopped at cleanup", addr)
	}
}
