package testenv

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// PrivateRedis is a redis-server of the test's own, on its own port, that
// the test may stop and start (the shared one stays untouched). It keeps
// nothing on disk: a restart loses every key, as production Redis without
// persistence does.
type PrivateRedis struct {
	t    testing.TB
	Addr string
	cmd  *exec.Cmd
}

// StartRedis starts a private redis-server, stopped at cleanup.
func StartRedis(t testing.TB) *PrivateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed (.ci/run installs it): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	p := &PrivateRedis{t: t, Addr: "127.0.0.1:" + strconv.Itoa(port)}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// Start starts the server (again) and waits until it answers.
func (p *PrivateRedis) Start() {
	p.t.Helper()
	port := p.Addr[len("127.0.0.1:"):]
	p.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", p.t.TempDir())
	require.NoError(p.t, p.cmd.Start())
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr, MaxRetries: -1})
	defer rdb.Close()
	Eventually(p.t, 10*time.Second, func() bool { return rdb.Ping(context.Background()).Err() == nil },
		"private redis-server at %s did not start", p.Addr)
}

// Stop kills the server at once (no save) and waits for it to exit.
func (p *PrivateRedis) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

// String names the server.
func (p *PrivateRedis) String() string { return fmt.Sprintf("redis-server at %s", p.Addr) }
