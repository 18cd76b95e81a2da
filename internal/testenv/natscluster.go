package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// NATSCluster is a JetStream cluster of the test's own: embedded
// nats-servers joined by routes, each with its own store directory, on
// fixed local ports so that a node shut down by [NATSCluster.Stop] comes
// back on the same addresses with [NATSCluster.Start]. Every node is shut
// down at cleanup.
type NATSCluster struct {
	t     testing.TB
	opts  []server.Options
	nodes []*server.Server
}

// StartNATSCluster starts n (at least 3, for R3 streams) embedded
// JetStream servers with routes to each other and waits until every node
// is ready and the cluster has a JetStream meta leader that counts every
// node online.
func StartNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	require.GreaterOrEqual(t, n, 3, "a JetStream cluster for R3 streams needs 3 nodes")
	ports := freePorts(t, 2*n)
	name := "c" + Unique()
	routes := make([]string, n)
	for i := range n {
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(ports[2*i+1])
	}
	c := &NATSCluster{t: t, opts: make([]server.Options, n), nodes: make([]*server.Server, n)}
	t.Cleanup(c.stopAll)
	for i := range n {
		c.opts[i] = server.Options{
			ServerName: fmt.Sprintf("%s-n%d", name, i),
			Host:       "127.0.0.1", Port: ports[2*i],
			JetStream: true, StoreDir: t.TempDir(),
			NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: name, Host: "127.0.0.1", Port: ports[2*i+1]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
	}
	for i := range n {
		c.Start(i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !poll(ctx, func() bool { return c.metaLeader() >= 0 }) {
		t.Fatalf("NATS cluster %s elected no JetStream meta leader in 30s", name)
	}
	// A leader that has not heard from every peer yet places an R3 stream
	// nowhere: "no suitable peers for placement, peer offline" (10005),
	// as TestNATSClusterLeaderChange saw in CI.
	if !poll(ctx, func() bool { return c.onlinePeers() == n }) {
		t.Fatalf("NATS cluster %s: the meta leader sees %d of %d peers online after 30s", name, c.onlinePeers(), n)
	}
	return c
}

// onlinePeers is how many JetStream peers the meta leader counts online,
// with current stats (0 while there is no leader).
func (c *NATSCluster) onlinePeers() int {
	if i := c.metaLeader(); i >= 0 {
		return len(c.nodes[i].JetStreamClusterPeers())
	}
	return 0
}

// Start starts node i (again, after [NATSCluster.Stop]) on its ports and
// store and waits until it takes connections.
func (c *NATSCluster) Start(i int) {
	c.t.Helper()
	opts := c.opts[i]
	s, err := server.NewServer(&opts)
	require.NoError(c.t, err, "nats-server node %d", i)
	go s.Start()
	require.True(c.t, s.ReadyForConnections(15*time.Second), "nats-server node %d did not start", i)
	c.nodes[i] = s
}

// Stop shuts node i down and waits until it is down; the others elect new
// leaders for what it led.
func (c *NATSCluster) Stop(i int) {
	if s := c.nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.nodes[i] = nil
	}
}

func (c *NATSCluster) stopAll() {
	for i := range c.nodes {
		c.Stop(i)
	}
}

// Size is the number of nodes, running or not.
func (c *NATSCluster) Size() int { return len(c.opts) }

// Node returns node i, nil while it is stopped.
func (c *NATSCluster) Node(i int) *server.Server { return c.nodes[i] }

// Name is node i's server name, as JetStream names leaders and replicas.
func (c *NATSCluster) Name(i int) string { return c.opts[i].ServerName }

// URL is node i's client URL (stable across restarts).
func (c *NATSCluster) URL(i int) string {
	return (&url.URL{Scheme: "nats", Host: "127.0.0.1:" + strconv.Itoa(c.opts[i].Port)}).String()
}

// URLs is every node's client URL, comma-separated, as nats.Connect and
// the binaries' --nats flag take them.
func (c *NATSCluster) URLs() string {
	urls := make([]string, c.Size())
	for i := range urls {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}

// Index returns the index of the node called name, -1 if none is.
func (c *NATSCluster) Index(name string) int {
	for i := range c.opts {
		if c.opts[i].ServerName == name {
			return i
		}
	}
	return -1
}

// metaLeader is the index of the running node that is the JetStream meta
// leader, -1 while there is none.
func (c *NATSCluster) metaLeader() int {
	for i, s := range c.nodes {
		if s != nil && s.JetStreamIsLeader() {
			return i
		}
	}
	return -1
}

// ErrNotSettled is returned by [StreamSettled] while a stream has no leader
// or a replica is not current.
var ErrNotSettled = errors.New("testenv: stream not settled")

// StreamSettled returns the node name leading stream when it has a leader
// and every one of its want-1 other replicas is known, current and not
// offline; [ErrNotSettled] (wrapped, with what is missing) otherwise.
func StreamSettled(ctx context.Context, js jetstream.JetStream, stream string, want int) (string, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrNotSettled, stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrNotSettled, stream, err)
	}
	cl := info.Cluster
	switch {
	case cl == nil || cl.Leader == "":
		return "", fmt.Errorf("%w: %s has no leader", ErrNotSettled, stream)
	case len(cl.Replicas) != want-1:
		return "", fmt.Errorf("%w: %s has %d replicas besides the leader, want %d", ErrNotSettled, stream, len(cl.Replicas), want-1)
	}
	for _, p := range cl.Replicas {
		if !p.Current || p.Offline {
			return "", fmt.Errorf("%w: %s replica %s current=%t offline=%t", ErrNotSettled, stream, p.Name, p.Current, p.Offline)
		}
	}
	return cl.Leader, nil
}

// WaitStreamSettled waits up to timeout for [StreamSettled] and returns the
// index of the node leading stream.
func (c *NATSCluster) WaitStreamSettled(js jetstream.JetStream, stream string, want int, timeout time.Duration) int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var leader string
	var last error
	ok := poll(ctx, func() bool {
		ictx, icancel := context.WithTimeout(ctx, 2*time.Second)
		defer icancel()
		leader, last = StreamSettled(ictx, js, stream, want)
		return last == nil
	})
	if !ok {
		c.t.Fatalf("stream %s not settled within %s: %v", stream, timeout, last)
	}
	i := c.Index(leader)
	require.GreaterOrEqual(c.t, i, 0, "stream %s led by %q, not a node of this cluster", stream, leader)
	return i
}
