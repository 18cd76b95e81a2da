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
// delivered, first posted in publish order, and posted again only by a
// worker that could not know it was posted: at most one repeat per killed
// process, each of a message first posted before a kill and repeated after
// it (counted although DingTalk drops it by msgUuid). The survivors drain
// on SIGTERM and exit 0.
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
	const killed = 3
	killStart := time.Now()
	for _, cmd := range procs[:killed] {
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
	}
	killEnd := time.Now()

	// Wait until every message was taken and none is left in the stream
	// (settled: nothing left that could be posted again).
	want := make([]string, n)
	for i, env := range envs {
		want[i] = env.ID
	}
	out, err := js.Stream(ctx, topo.OutStream())
	require.NoError(t, err)
	var p testenv.Posts
	testenv.Eventually(t, 90*time.Second, func() bool {
		p = testenv.SplitPosts(sim.Requests("tok"), testenv.ByMsgUUID)
		info, err := out.Info(ctx)
		return err == nil && p.Has(want) && info.State.Msgs == 0
	}, "want %d delivered and the stream empty", n)
	p = testenv.SplitPosts(sim.Requests("tok"), testenv.ByMsgUUID)

	st := sim.Stats("tok")
	require.Zero(t, st.Breaches, "%+v", st)
	require.Empty(t, p.Refused, "%+v", st)
	require.Empty(t, p.Faulted)
	// Each message taken once, in publish order (order of first
	// appearance), and at most one repeat per killed process.
	require.NoError(t, p.Check(want, killed))
	require.Equal(t, n, st.Accepted)
	// A worker killed between the platform's answer and its ledger write
	// cannot know it posted: another worker posts the message again and
	// DingTalk drops the repeat by msgUuid. The simulator counts each such
	// repeat; none may come from anything but a kill: the message's first
	// post came before the last kill, its repeat after the first, and a
	// message is repeated at most once per kill.
	require.Equal(t, len(p.Repeats), st.Duplicates, "every repeat is a DingTalk duplicate: %+v", st)
	first := map[string]time.Time{}
	for _, rq := range p.Firsts {
		first[rq.MsgUUID] = rq.At
	}
	per := map[string]int{}
	for _, rq := range p.Repeats {
		require.Equal(t, robotsim.RequestDuplicate, rq.Outcome)
		require.True(t, first[rq.MsgUUID].Before(killEnd), "repeat of %s first posted at %s, after the kills (%s..%s)",
			rq.MsgUUID, first[rq.MsgUUID], killStart, killEnd)
		require.True(t, rq.At.After(killStart), "repeat of %s at %s, before any kill (%s)", rq.MsgUUID, rq.At, killStart)
		per[rq.MsgUUID]++
		require.LessOrEqual(t, per[rq.MsgUUID], killed, "%s repeated more often than processes were killed", rq.MsgUUID)
	}
	repeats := 0
	for _, rc := range sim.Received("tok") {
		require.Equal(t, per[rc.MsgUUID], rc.Repeats, "the simulator's count of repeats of %s", rc.MsgUUID)
		repeats += rc.Repeats
	}
	require.Equal(t, len(p.Repeats), repeats)
	t.Logf("%d repeats after %d kills: %v", len(p.Repeats), killed, per)
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
