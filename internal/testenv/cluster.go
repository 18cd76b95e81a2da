package testenv

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// clusterNodes is how many masters [StartRedisCluster] starts: the fewest
// redis-cli accepts for a cluster.
const clusterNodes = 3

// RedisCluster is a Redis Cluster of the test's own: three masters without
// replicas on free local ports, keeping nothing on disk, killed at cleanup.
type RedisCluster struct {
	// Addrs are the masters' host:port, in the order they were started.
	Addrs []string

	cmds []*exec.Cmd
	logs []*SyncBuffer
}

// StartRedisCluster starts three redis-server processes in cluster mode,
// joins them with `redis-cli --cluster create` (slots split evenly, no
// replicas) and waits until every node reports cluster_state:ok. It needs
// redis-server and redis-cli (Debian: redis-server, which depends on
// redis-tools) and Redis >= 7 (--cluster-port). Everything is killed at
// cleanup.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (Debian package redis-server, which depends on redis-tools; .ci/run installs it): %v", bin, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Each node needs a client port and a cluster bus port; the default bus
	// port (port+10000) may be taken or out of range, so pick both.
	ports := freePorts(t, 2*clusterNodes)
	dir := t.TempDir()
	c := &RedisCluster{}
	t.Cleanup(c.stop)
	for i := range clusterNodes {
		port, bus := strconv.Itoa(ports[2*i]), strconv.Itoa(ports[2*i+1])
		addr := "127.0.0.1:" + port
		cmd := exec.Command("redis-server",
			"--port", port, "--cluster-port", bus, "--bind", "127.0.0.1",
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes-"+port+".conf"),
			"--save", "", "--appendonly", "no", "--dir", dir)
		log := &SyncBuffer{}
		cmd.Stdout, cmd.Stderr = log, log
		require.NoError(t, cmd.Start(), "start redis-server on %s", addr)
		c.Addrs = append(c.Addrs, addr)
		c.cmds = append(c.cmds, cmd)
		c.logs = append(c.logs, log)
	}
	for i, addr := range c.Addrs {
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		ok := poll(ctx, func() bool { return rdb.Ping(ctx).Err() == nil })
		_ = rdb.Close()
		if !ok {
			t.Fatalf("redis-server at %s did not start:\n%s", addr, c.logs[i].String())
		}
	}

	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}

	for _, addr := range c.Addrs {
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		var info string
		ok := poll(ctx, func() bool {
			info, _ = rdb.ClusterInfo(ctx).Result()
			return strings.Contains(info, "cluster_state:ok")
		})
		_ = rdb.Close()
		if !ok {
			t.Fatalf("cluster node %s is not ok:\n%s", addr, info)
		}
	}
	return c
}

// Client returns a new cluster client of c, closed at cleanup, after
// checking that every master answers. configure may adjust its options.
func (c *RedisCluster) Client(t testing.TB, configure ...func(*redis.ClusterOptions)) *redis.ClusterClient {
	t.Helper()
	o := &redis.ClusterOptions{Addrs: c.Addrs}
	for _, f := range configure {
		f(o)
	}
	rdb := redis.NewClusterClient(o)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		return m.Ping(ctx).Err()
	}), "ping every master of the cluster")
	return rdb
}

// MasterOf returns the address of the master that serves key's slot.
func (c *RedisCluster) MasterOf(t testing.TB, key string) string {
	t.Helper()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: c.Addrs[0]})
	defer func() { _ = rdb.Close() }()
	slot, err := rdb.ClusterKeySlot(ctx, key).Result()
	require.NoError(t, err)
	slots, err := rdb.ClusterSlots(ctx).Result()
	require.NoError(t, err)
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
			return s.Nodes[0].Addr
		}
	}
	t.Fatalf("no master serves slot %d of %q", slot, key)
	return ""
}

// stop kills every node at once and waits for it to exit.
func (c *RedisCluster) stop() {
	for _, cmd := range c.cmds {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	c.cmds = nil
}

// String names the cluster.
func (c *RedisCluster) String() string {
	return fmt.Sprintf("redis cluster at %s", strings.Join(c.Addrs, ","))
}

// freePorts returns n distinct local TCP ports that were free a moment ago
// (all listeners are held open until every port is chosen).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer func() { _ = ln.Close() }()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// poll calls cond every 20ms until it is true (true) or ctx ends (false).
func poll(ctx context.Context, cond func() bool) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}
