package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/robotsim"
)

// Eight worker processes share one robot; three are killed with SIGKILL in
// the middle of the run. The simulator sees no limit breach, every message
// delivered exactly once (a repeat post by a worker that could not know is
// dropped by msgUuid), in order, and the survivors drain on SIGTERM and
// exit 0.
func TestEightProcessesKilledMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the worker binary")
	}
	bin := filepath.Join(t.TempDir(), "worker")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run(), "go build ./cmd/worker")

	natsURL := testenv.NATSURL(t)
	_, js := testenv.Connect(t, natsURL)
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(context.Background(), js))
	rdb, _ := testenv.Redis(t)
	ctx := context.Background()
	t.Cleanup(func() {
		keys, _ := rdb.Keys(ctx, topo.Prefix+":*").Result()
		if len(keys) > 0 {
			_ = rdb.Del(ctx, keys...).Err()
		}
	})
	// The Redis history under this fresh prefix is complete (empty): no
	// restart-guard quiet window.
	require.NoError(t, rdb.Set(ctx, topo.Prefix+":epoch", "0", 0).Err())

	const window, max, n = 2 * time.Second, 10, 50
	sim := robotsim.NewServer(robotsim.Config{Window: window, Ban: time.Minute})
	t.Cleanup(sim.Close)
	require.NoError(t, sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: "tok", Secret: "SECproc", Limit: max}))
	cfg := testenv.WriteFile(t, "robots.yaml", fmt.Sprintf(`
prefix: %s
ack_wait: 2s
retry: {initial_interval: 50ms, max_interval: 500ms}
platforms:
  dingtalk: {limit: %d, window: %s, margin: 100ms, cool_off: 5s}
robots:
  - name: shared
    platform: dingtalk
    webhook: "%s"
    secret_env: SHARED_SECRET
`, topo.Prefix, max, window, sim.WebhookURL("tok")))

	procs := make([]*exec.Cmd, 8)
	for i := range procs {
		cmd := exec.Command(bin, "--config", cfg, "--nats", natsURL, "--redis", testenv.RedisAddr(),
			"--metrics-addr", "", "--log-level", "error", "--name", fmt.Sprintf("w%d", i))
		cmd.Env = append(os.Environ(), "SHARED_SECRET=SECproc")
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		procs[i] = cmd
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}

	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	envs := make([]*envelope.Envelope, n)
	for i := range envs {
		envs[i] = envelope.New("shared", envelope.Message{Text: &envelope.Text{Content: fmt.Sprintf("msg %d", i)}})
	}
	_, err = pub.PublishAll(ctx, envs)
	require.NoError(t, err)

	testenv.Eventually(t, 60*time.Second, func() bool { return len(sim.Received("tok")) >= 15 }, "first deliveries")
	for _, cmd := range procs[:3] {
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
	}

	testenv.Eventually(t, 90*time.Second, func() bool { return len(sim.Received("tok")) >= n },
		"want %d delivered, have %d", n, len(sim.Received("tok")))
	st := sim.Stats("tok")
	require.Zero(t, st.Breaches, "%+v", st)
	// A worker killed between the platform's answer and its ledger write
	// cannot know it posted: its message is posted again by another worker
	// (at least once), and DingTalk drops the repeat by msgUuid. So at most
	// one repeat per killed process reaches the platform, and none is shown.
	require.LessOrEqual(t, st.Duplicates, 3, "%+v", st)
	require.Equal(t, n, st.Accepted)
	got := sim.Received("tok")
	for i, rc := range got {
		require.Equal(t, envs[i].ID, rc.MsgUUID, "arrival %d out of order", i)
	}
	dls, err := deadletter.List(ctx, js, topo, "", 0)
	require.NoError(t, err)
	require.Empty(t, dls)

	for _, cmd := range procs[3:] {
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	}
	for _, cmd := range procs[3:] {
		require.NoError(t, cmd.Wait(), "a worker drains and exits 0 on SIGTERM")
	}
}
