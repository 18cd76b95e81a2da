package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
)

// reloadRig is a worker process started from its binary, with the robot
// simulator, NATS and Redis it uses.
type reloadRig struct {
	t       *testing.T
	sim     *robotsim.Server
	natsURL string
	topo    stream.Topology
	pub     *publisher.Publisher
	cmd     *exec.Cmd
	stderr  *testenv.SyncBuffer
	metrics string
}

// buildWorker builds the worker binary once per test.
func buildWorker(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the worker binary")
	}
	bin := filepath.Join(t.TempDir(), "worker")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run(), "go build ./cmd/worker")
	return bin
}

func newReloadRig(t *testing.T, tokens ...string) *reloadRig {
	t.Helper()
	natsURL := testenv.NATSURL(t)
	_, js := testenv.Connect(t, natsURL)
	g := &reloadRig{t: t, natsURL: natsURL, topo: testenv.Topology(t, js), stderr: &testenv.SyncBuffer{}}
	rdb, _ := testenv.Redis(t)
	t.Cleanup(func() {
		ctx := context.Background()
		if keys, _ := rdb.Keys(ctx, g.topo.Prefix+":*").Result(); len(keys) > 0 {
			_ = rdb.Del(ctx, keys...).Err()
		}
	})
	g.sim = robotsim.NewServer(robotsim.Config{Logger: testLogger()})
	t.Cleanup(g.sim.Close)
	for _, tok := range tokens {
		require.NoError(t, g.sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: tok}))
	}
	var err error
	g.pub, err = publisher.New(js, g.topo)
	require.NoError(t, err)
	return g
}

// config is a configuration of robots named by "name=token".
func (g *reloadRig) config(robots ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "prefix: %s\nack_wait: 2s\nrobots:\n", g.topo.Prefix)
	for _, r := range robots {
		name, tok, _ := strings.Cut(r, "=")
		fmt.Fprintf(&b, "  - name: %s\n    platform: dingtalk\n    webhook: \"%s\"\n", name, g.sim.WebhookURL(tok))
	}
	return b.String()
}

// start runs bin on the configuration file at path, polling it every
// 100ms, and waits until it is ready.
func (g *reloadRig) start(bin, path string) {
	t := g.t
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	g.metrics = "http://" + addr
	g.cmd = exec.Command(bin, "--config", path, "--config-poll", "100ms", "--nats", g.natsURL,
		"--redis", testenv.RedisAddr(), "--restart-guard=false", "--metrics-addr", addr, "--name", "reloader")
	g.cmd.Stderr = g.stderr
	require.NoError(t, g.cmd.Start())
	t.Cleanup(func() { _ = g.cmd.Process.Kill(); _ = g.cmd.Wait() })
	testenv.Eventually(t, 30*time.Second, func() bool {
		resp, err := http.Get(g.metrics + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "worker not ready; logs:\n%s", g.stderr.String())
}

// metric is the value of the unlabelled series name; -1 when absent.
func (g *reloadRig) metric(name string) float64 {
	resp, err := http.Get(g.metrics + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(g.t, err)
			return f
		}
	}
	return -1
}

// waitMetric waits until the series name is want.
func (g *reloadRig) waitMetric(name string, want float64) {
	g.t.Helper()
	testenv.Eventually(g.t, 15*time.Second, func() bool { return g.metric(name) == want },
		"%s: want %g, have %g; logs:\n%s", name, want, g.metric(name), g.stderr.String())
}

func (g *reloadRig) send(robot, text string) {
	g.t.Helper()
	_, err := g.pub.Publish(context.Background(), envelope.New(robot, envelope.Message{Text: &envelope.Text{Content: text}}))
	require.NoError(g.t, err)
}

// received is what the simulator's robot tok was posted, in order.
func (g *reloadRig) received(tok string) []string {
	var out []string
	for _, r := range g.sim.Received(tok) {
		out = append(out, r.Content)
	}
	return out
}

func (g *reloadRig) waitReceived(tok string, want ...string) {
	g.t.Helper()
	testenv.Eventually(g.t, 20*time.Second, func() bool { return len(g.received(tok)) >= len(want) },
		"robot %s: want %q, have %q; logs:\n%s", tok, want, g.received(tok), g.stderr.String())
	require.Equal(g.t, want, g.received(tok))
}

// stop drains the worker with SIGTERM; it exits 0.
func (g *reloadRig) stop() {
	g.t.Helper()
	require.NoError(g.t, g.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(g.t, g.cmd.Wait(), "the worker drains and exits 0; logs:\n%s", g.stderr.String())
}

// writeConfig replaces the file at path with content, by a rename (as
// editors and configuration tools write).
func writeConfig(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path+".tmp", []byte(content), 0o600))
	require.NoError(t, os.Rename(path+".tmp", path))
}

// TestReloadAddChangeRemoveBroken runs the worker binary and changes its
// file four times without a restart: (a) an added robot's message is
// delivered; (b) a changed webhook takes the next message; (c) a removed
// robot's queued message is not delivered by this worker; (d) a broken file
// keeps the running configuration (the next messages still go where they
// went), logs every problem, counts exactly one failure, and a good file
// after it is applied.
func TestReloadAddChangeRemoveBroken(t *testing.T) {
	bin := buildWorker(t)
	g := newReloadRig(t, "tokA", "tokB", "tokB2", "tokC", "tokD")
	path := filepath.Join(t.TempDir(), "robots.yaml")
	writeConfig(t, path, g.config("a=tokA", "b=tokB"))
	g.start(bin, path)
	require.Equal(t, 1.0, g.metric("botrelay_config_reload_ok"))
	require.Equal(t, 0.0, g.metric("botrelay_config_reloads_total"))
	require.Equal(t, 0.0, g.metric("botrelay_config_reload_failures_total"))
	started := g.metric("botrelay_config_last_reload_success_timestamp_seconds")
	require.InDelta(t, float64(time.Now().Unix()), started, 60)
	g.send("a", "a1")
	g.send("b", "b1")
	g.waitReceived("tokA", "a1")
	g.waitReceived("tokB", "b1")

	t.Run("add", func(t *testing.T) {
		writeConfig(t, path, g.config("a=tokA", "b=tokB", "c=tokC"))
		g.waitMetric("botrelay_config_reloads_total", 1)
		g.send("c", "c1")
		g.waitReceived("tokC", "c1")
		require.Contains(t, g.stderr.String(), "added=c changed=\"\" removed=\"\"")
	})
	t.Run("change webhook", func(t *testing.T) {
		writeConfig(t, path, g.config("a=tokA", "b=tokB2", "c=tokC"))
		g.waitMetric("botrelay_config_reloads_total", 2)
		g.send("b", "b2")
		g.waitReceived("tokB2", "b2")
		require.Equal(t, []string{"b1"}, g.received("tokB"), "the old webhook gets nothing more")
	})
	t.Run("remove", func(t *testing.T) {
		writeConfig(t, path, g.config("b=tokB2", "c=tokC"))
		g.waitMetric("botrelay_config_reloads_total", 3)
		g.send("a", "a2")
		g.send("c", "c2") // published after a2: delivered while a2 waits
		g.waitReceived("tokC", "c1", "c2")
		time.Sleep(time.Second) // a2 would have been posted by now
		require.Equal(t, []string{"a1"}, g.received("tokA"), "a removed robot's message is not delivered by this worker")
	})
	t.Run("broken file", func(t *testing.T) {
		before := g.metric("botrelay_config_last_reload_success_timestamp_seconds")
		broken := g.config("b=tokB", "c=tokC", "d=tokD") + "    limit: 99\n" +
			"  - name: e\n    platform: slack\n    webhook: \"https://example.com/x\"\n" +
			"  - name: f\n    platform: dingtalk\n    webhook: \"https://oapi.dingtalk.com/robot/send?access_token=f\"\n    secret_env: NOT_SET\n" +
			"concurrency: -1\n"
		writeConfig(t, path, broken)
		g.waitMetric("botrelay_config_reload_failures_total", 1)
		require.Equal(t, 0.0, g.metric("botrelay_config_reload_ok"))
		require.Equal(t, 3.0, g.metric("botrelay_config_reloads_total"))
		require.Equal(t, before, g.metric("botrelay_config_last_reload_success_timestamp_seconds"))
		logs := g.stderr.String()
		for _, p := range []string{
			"concurrency: must be positive, got -1",
			`robots[2] \"d\": limit: 99 per 1m0s exceeds the dingtalk limit of 20 per 1m0s`,
			`robots[3] \"e\": platform: not supported`,
			`robots[4] \"f\": secret_env: environment variable NOT_SET is not set`,
		} {
			require.Contains(t, logs, p)
		}
		require.Equal(t, 4, strings.Count(logs, `msg="configuration problem"`), logs)
		require.Contains(t, logs, "configuration reload failed: the running configuration stays")

		// The running configuration is the last good one.
		g.send("b", "b3")
		g.waitReceived("tokB2", "b2", "b3")
		require.Equal(t, []string{"b1"}, g.received("tokB"))
		time.Sleep(500 * time.Millisecond) // five polls: the broken file is not counted again
		require.Equal(t, 1.0, g.metric("botrelay_config_reload_failures_total"))

		// A good file after it is applied.
		writeConfig(t, path, g.config("b=tokB2", "c=tokC", "d=tokD"))
		g.waitMetric("botrelay_config_reloads_total", 4)
		require.Equal(t, 1.0, g.metric("botrelay_config_reload_ok"))
		require.Equal(t, 1.0, g.metric("botrelay_config_reload_failures_total"))
		require.Greater(t, g.metric("botrelay_config_last_reload_success_timestamp_seconds"), before)
		g.send("d", "d1")
		g.waitReceived("tokD", "d1")
	})
	g.stop()
	require.NotContains(t, g.stderr.String(), "tokB2", "webhooks are logged redacted")
	require.NotContains(t, g.stderr.String(), "panic")
	if testing.Verbose() {
		t.Logf("worker log:\n%s", g.stderr.String())
	}
}

// TestReloadConfigMapSwap mounts the file as Kubernetes mounts a ConfigMap
// (config.yaml → ..data/config.yaml, ..data → ..<timestamp>) and publishes
// a new version by swapping the ..data link: the worker picks it up;
// SIGHUP reloads the unchanged file on demand; a setting read only at
// start is reported as needing a restart while the robots are applied.
func TestReloadConfigMapSwap(t *testing.T) {
	bin := buildWorker(t)
	g := newReloadRig(t, "tokA", "tokB")
	dir := t.TempDir()
	version := 0
	publish := func(content string) {
		version++
		old, _ := os.Readlink(filepath.Join(dir, "..data"))
		ts := fmt.Sprintf("..2026_12_02_10_00_%02d.%d", version, 1000+version)
		require.NoError(t, os.Mkdir(filepath.Join(dir, ts), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, ts, "config.yaml"), []byte(content), 0o644))
		require.NoError(t, os.Symlink(ts, filepath.Join(dir, "..data_tmp")))
		require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
		if old != "" {
			require.NoError(t, os.RemoveAll(filepath.Join(dir, old)))
		}
	}
	publish(g.config("a=tokA"))
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.Symlink(filepath.Join("..data", "config.yaml"), path))
	g.start(bin, path)
	g.send("a", "a1")
	g.waitReceived("tokA", "a1")

	publish(g.config("a=tokA", "b=tokB"))
	g.waitMetric("botrelay_config_reloads_total", 1)
	g.send("b", "b1")
	g.waitReceived("tokB", "b1")

	require.NoError(t, g.cmd.Process.Signal(syscall.SIGHUP))
	g.waitMetric("botrelay_config_reloads_total", 2)
	// The counter moves just before the line is logged.
	testenv.Eventually(t, 5*time.Second, func() bool { return strings.Contains(g.stderr.String(), `why="reload requested"`) },
		"SIGHUP's reload logged")
	require.Equal(t, 0.0, g.metric("botrelay_config_restart_required"))

	publish(strings.Replace(g.config("a=tokA", "b=tokB"), "ack_wait: 2s", "ack_wait: 3s\nconcurrency: 4", 1))
	g.waitMetric("botrelay_config_reloads_total", 3)
	require.Equal(t, 1.0, g.metric("botrelay_config_restart_required"))
	require.Contains(t, g.stderr.String(), `settings="ack_wait, concurrency"`)
	g.send("b", "b2")
	g.waitReceived("tokB", "b1", "b2")
	require.Equal(t, 0.0, g.metric("botrelay_config_reload_failures_total"))
	g.stop()
}
