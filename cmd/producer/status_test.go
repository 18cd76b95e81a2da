package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/stream"
)

// statusSecret is the robots' secret in the test config: it must never be
// printed.
const statusSecret = "SECs3cr3t-never-shown"

// statusConfig is a robots.yaml for the fixture: ops (DingTalk, the default
// 20 a minute), dev (POPO, 60) and tight (DingTalk, 2 a minute), plus
// quiet-one, which has nothing queued.
func statusConfig(t *testing.T, f fixture) string {
	t.Helper()
	return testenv.WriteFile(t, "robots.yaml", `prefix: `+f.topo.Prefix+`
robots:
  - name: ops
    platform: dingtalk
    webhook: "https://oapi.dingtalk.com/robot/send?access_token=tok3n"
    secret: "`+statusSecret+`"
  - name: dev
    platform: popo
    webhook: "https://open.popo.netease.com/open-apis/robots/v1/hook/h00k"
  - name: tight
    platform: dingtalk
    webhook: "https://oapi.dingtalk.com/robot/send?access_token=tok3n-tight"
    limit: 2
  - name: quiet-one
    platform: dingtalk
    webhook: "https://oapi.dingtalk.com/robot/send?access_token=tok3n-quiet"
`)
}

// statusRedis returns a client of the test Redis and a limiter with the
// fixture's prefix (the workers use the stream prefix for their keys). The
// prefix's keys are deleted at cleanup. With armed, the restart guard's
// epoch is set long ago, as in a deployment that has been running.
func statusRedis(t *testing.T, f fixture, armed bool) (*redis.Client, *limiter.Redis) {
	t.Helper()
	ctx := context.Background()
	rdb, _ := testenv.Redis(t)
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), f.topo.Prefix+":*").Result()
		if len(keys) > 0 {
			_ = rdb.Del(context.Background(), keys...).Err()
		}
	})
	if armed {
		require.NoError(t, rdb.Set(ctx, f.topo.Prefix+":epoch", "0", 0).Err())
	}
	lim, err := limiter.NewRedis(rdb, limiter.WithPrefix(f.topo.Prefix))
	require.NoError(t, err)
	return rdb, lim
}

// statusTable is the parsed output of "producer status".
type statusTable struct {
	header    []string
	rows      map[string]map[string]string // robot → column → value
	diagnoses map[string][]string          // robot → lines
}

func parseStatus(t *testing.T, out string) statusTable {
	t.Helper()
	table, diag, ok := strings.Cut(out, "\n\n")
	require.True(t, ok, "no blank line between table and diagnoses:\n%s", out)
	diag, _, _ = strings.Cut(diag, "\n\n") // then the streams
	lines := strings.Split(table, "\n")
	st := statusTable{header: strings.Fields(lines[0]), rows: map[string]map[string]string{}, diagnoses: map[string][]string{}}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		require.Len(t, f, len(st.header), "row %q", l)
		row := map[string]string{}
		for i, h := range st.header {
			row[h] = f[i]
		}
		st.rows[f[0]] = row
	}
	for _, l := range strings.Split(strings.TrimRight(diag, "\n"), "\n") {
		if l == "no problems found" {
			continue
		}
		robot, d, ok := strings.Cut(l, ": ")
		require.True(t, ok, "diagnosis %q", l)
		st.diagnoses[robot] = append(st.diagnoses[robot], d)
	}
	return st
}

// seedStatus sets up a worker-less deployment: ops has 3 messages and no
// consumer; dev has 2 messages and a consumer nobody pulls from (its
// workers are gone) and a dead letter.
func seedStatus(t *testing.T, f fixture) {
	t.Helper()
	ctx := context.Background()
	for range 3 {
		require.NoError(t, f.run(t, "", "send", "--robot", "ops", "--text", "disk full").err)
	}
	for range 2 {
		require.NoError(t, f.run(t, "", "send", "--robot", "dev", "--text", "build red").err)
	}
	_, err := f.topo.EnsureRobotConsumer(ctx, f.js, "dev", time.Minute)
	require.NoError(t, err)
	require.NoError(t, deadletter.Publish(ctx, f.js, f.topo, deadletter.Record{
		Robot: "dev", Reason: deadletter.ReasonPermanent, Detail: "keywords not in content", DeadAt: time.Now(),
	}))
}

func TestStatusQueuesOnly(t *testing.T) {
	t.Setenv(cli.EnvRedisAddr, "")
	f := newFixture(t)
	seedStatus(t, f)

	r := f.run(t, "", "status")
	require.NoError(t, r.err, r.stderr)
	st := parseStatus(t, r.stdout)
	require.Equal(t, []string{"ROBOT", "BACKLOG", "PENDING", "REDELIVERED", "WORKERS", "DEAD-LETTERS"}, st.header,
		"no limiter columns without --redis")
	require.Equal(t, map[string]map[string]string{
		"ops": {"ROBOT": "ops", "BACKLOG": "3", "PENDING": "0", "REDELIVERED": "0", "WORKERS": "-", "DEAD-LETTERS": "0"},
		"dev": {"ROBOT": "dev", "BACKLOG": "2", "PENDING": "0", "REDELIVERED": "0", "WORKERS": "0", "DEAD-LETTERS": "1"},
	}, st.rows)
	require.Equal(t, map[string][]string{
		"dev": {"1 dead letter: producer dlq list --robot dev"},
	}, st.diagnoses, "a fresh backlog without consumer or pull is normal: workers create consumers when work arrives")
	require.Empty(t, r.stderr)

	// Older than the workers' scan interval, it is a problem.
	time.Sleep(20 * time.Millisecond)
	r = f.run(t, "", "status", "--scan-interval", "10ms")
	require.NoError(t, r.err, r.stderr)
	st = parseStatus(t, r.stdout)
	require.Len(t, st.diagnoses["ops"], 1)
	require.Regexp(t, `^3 messages waiting, the oldest for \d+s, and no worker took them up \(no consumer robot_ops; workers create it within 10ms of work arriving\): are the workers running\? see their logs$`, st.diagnoses["ops"][0])
	require.Equal(t, []string{
		"no worker is pulling (is the robot configured on a worker? are the workers running?)",
		"1 dead letter: producer dlq list --robot dev",
	}, st.diagnoses["dev"])
	require.Empty(t, r.stderr)
	require.Error(t, f.run(t, "", "status", "--scan-interval", "0s").err)

	// --robot narrows to one row, even a robot nobody knows.
	r = f.run(t, "", "status", "--robot", "dev")
	require.NoError(t, r.err)
	st = parseStatus(t, r.stdout)
	require.Len(t, st.rows, 1)
	require.Equal(t, "2", st.rows["dev"]["BACKLOG"])
	r = f.run(t, "", "status", "--robot", "nobody")
	require.NoError(t, r.err)
	st = parseStatus(t, r.stdout)
	require.Equal(t, "0", st.rows["nobody"]["BACKLOG"])
	require.Empty(t, st.diagnoses)
	require.Contains(t, r.stdout, "\nno problems found\n")
}

func TestStatusEmpty(t *testing.T) {
	t.Setenv(cli.EnvRedisAddr, "")
	f := newFixture(t)
	r := f.run(t, "", "status")
	require.NoError(t, r.err)
	robots, streams, ok := strings.Cut(r.stdout, "\n\n")
	require.True(t, ok, r.stdout)
	require.Equal(t, "no robots: nothing queued, no robot consumers, no dead letters", robots)
	require.True(t, strings.HasPrefix(streams, "STREAM "), streams)
}

// With --redis but no --config there are no limiter columns: the workers
// key a robot's limiter state by its webhook's identity, which only the
// file gives. Status says so and does not read Redis.
func TestStatusRedisWithoutConfig(t *testing.T) {
	f := newFixture(t)
	seedStatus(t, f)
	t.Setenv(cli.EnvRedisAddr, testenv.ClosedAddr(t)) // the environment gives --redis; never contacted
	r := f.run(t, "", "status")
	require.NoError(t, r.err, r.stderr)
	st := parseStatus(t, r.stdout)
	require.Equal(t, []string{"ROBOT", "BACKLOG", "PENDING", "REDELIVERED", "WORKERS", "DEAD-LETTERS"}, st.header)
	require.Contains(t, r.stderr, "warning: no limiter columns: the workers keep a robot's window and cool-off under its webhook's identity")
}

// statusKey returns robot's limiter key under the config at path: the
// identity of its webhook, as the workers key it.
func statusKey(t *testing.T, path, robot string) (string, limiter.Limit) {
	t.Helper()
	cfg, err := config.Load(path)
	require.NoError(t, err)
	rb, ok := cfg.Robot(robot)
	require.True(t, ok, robot)
	require.NotEqual(t, robot, rb.LimitKey())
	return rb.LimitKey(), cfg.Limit(rb)
}

// A fresh limiter state (no epoch): every robot is quiet for one window,
// and status does not start that window.
func TestStatusRestartGuard(t *testing.T) {
	t.Setenv(cli.EnvRedisAddr, "")
	f := newFixture(t)
	seedStatus(t, f)
	rdb, _ := statusRedis(t, f, false)
	cfgPath := statusConfig(t, f)

	r := f.run(t, "", "status", "--redis", testenv.RedisAddr(), "--config", cfgPath, "--robot", "dev")
	require.NoError(t, r.err, r.stderr)
	st := parseStatus(t, r.stdout)
	require.Contains(t, st.diagnoses["dev"], "restart guard: quiet for 10m0s (the limiter state is new: after a first start, "+
		"a Redis restart or evictions, robots wait the longest cool-off, at least one window)", "the default cool-off")
	require.EqualValues(t, 0, rdb.Exists(context.Background(), f.topo.Prefix+":epoch").Val(), "status created the epoch")
	keys, err := rdb.Keys(context.Background(), f.topo.Prefix+":*").Result()
	require.NoError(t, err)
	require.Empty(t, keys)

	// Workers without the guard: no quiet time.
	r = f.run(t, "", "status", "--redis", testenv.RedisAddr(), "--config", cfgPath, "--robot", "dev", "--restart-guard=false")
	require.NoError(t, r.err, r.stderr)
	require.NotContains(t, r.stdout, "restart guard")
}

// With --redis and --config: every column, the robots of the file, limits
// from it, and the secrets it holds never shown.
func TestStatusFull(t *testing.T) {
	t.Setenv(cli.EnvRedisAddr, "")
	ctx := context.Background()
	f := newFixture(t)
	seedStatus(t, f)
	cfgPath := statusConfig(t, f)
	_, lim := statusRedis(t, f, true)
	opsKey, _ := statusKey(t, cfgPath, "ops")
	require.NoError(t, lim.CoolOff(ctx, opsKey, 8*time.Minute+12*time.Second))
	// The same state under the names, which the workers no longer use.
	require.NoError(t, lim.CoolOff(ctx, "dev", time.Hour))
	grant := func(robot string, n int) {
		key, l := statusKey(t, cfgPath, robot)
		for range n {
			d, err := lim.Reserve(ctx, key, l)
			require.NoError(t, err)
			require.True(t, d.Allowed)
		}
	}
	grant("dev", 2)
	grant("tight", 2)
	// A robot the file does not have, with a message queued; and one
	// message waiting for tight's next slot.
	require.NoError(t, f.run(t, "", "send", "--robot", "stray", "--text", "x").err)
	require.NoError(t, f.run(t, "", "send", "--robot", "tight", "--text", "x").err)

	r := f.run(t, "", "status", "--redis", testenv.RedisAddr(), "--config", cfgPath)
	require.NoError(t, r.err, r.stderr)
	st := parseStatus(t, r.stdout)
	require.Equal(t, []string{"ROBOT", "BACKLOG", "PENDING", "REDELIVERED", "WORKERS", "COOL-OFF", "IN-WINDOW", "NEXT-SLOT", "DEAD-LETTERS"}, st.header)
	require.Equal(t, []string{"dev", "ops", "quiet-one", "stray", "tight"}, robotOrder(t, r.stdout))

	require.Equal(t, "0/20", st.rows["ops"]["IN-WINDOW"])
	require.Regexp(t, `^8m1[0-2]s$`, st.rows["ops"]["NEXT-SLOT"], "the cool-off holds the next slot")
	require.Equal(t, "2/60", st.rows["dev"]["IN-WINDOW"])
	require.Equal(t, "now", st.rows["dev"]["NEXT-SLOT"])
	require.Equal(t, "2/2", st.rows["tight"]["IN-WINDOW"])
	require.Regexp(t, `^(1m[0-5]s|5\ds)$`, st.rows["tight"]["NEXT-SLOT"])
	require.Equal(t, map[string]string{"ROBOT": "quiet-one", "BACKLOG": "0", "PENDING": "0", "REDELIVERED": "0", "WORKERS": "-",
		"COOL-OFF": "-", "IN-WINDOW": "0/20", "NEXT-SLOT": "now", "DEAD-LETTERS": "0"}, st.rows["quiet-one"])
	require.Equal(t, "-", st.rows["dev"]["COOL-OFF"], "read under the identity, not the name")
	require.Equal(t, "-", st.rows["stray"]["COOL-OFF"], "no limiter key known")
	require.Equal(t, "-", st.rows["stray"]["IN-WINDOW"])
	require.Equal(t, "-", st.rows["stray"]["NEXT-SLOT"])

	require.Len(t, st.diagnoses["tight"], 2)
	require.Regexp(t, `^rate limit: 2/2 sent in the last 1m5s; next slot in (1m[0-5]s|5\ds)$`, st.diagnoses["tight"][1])
	require.Contains(t, st.diagnoses["stray"], "not in "+cfgPath+": workers using it dead-letter this robot's messages as unknown")
	require.Empty(t, st.diagnoses["quiet-one"])
	require.NotContains(t, r.stdout+r.stderr, statusSecret)
	require.NotContains(t, r.stdout+r.stderr, "tok3n")

	// The same as JSON, one object per robot.
	r = f.run(t, "", "status", "--redis", testenv.RedisAddr(), "--config", cfgPath, "--json")
	require.NoError(t, r.err, r.stderr)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	require.Len(t, lines, 5+2, "robots, then the streams")
	got := map[string]robotStatus{}
	for _, l := range lines[:5] {
		var rs robotStatus
		require.NoError(t, json.Unmarshal([]byte(l), &rs), l)
		got[rs.Robot] = rs
		var raw map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &raw))
		require.Contains(t, raw, "backlog", "queue fields are at the top level")
	}
	require.EqualValues(t, 3, got["ops"].Backlog)
	require.False(t, got["ops"].Consumer)
	require.Greater(t, got["ops"].Limiter.CoolOffLeftMS, int64(8*time.Minute/time.Millisecond))
	require.Equal(t, 20, got["ops"].Limiter.Max)
	require.True(t, got["dev"].Consumer)
	require.EqualValues(t, 1, got["dev"].DeadLetters)
	require.Equal(t, 2, *got["dev"].Limiter.InWindow)
	require.Zero(t, *got["dev"].Limiter.NextSlotMS)
	require.Nil(t, got["stray"].Limiter)
	require.Len(t, got["ops"].Diagnoses, 2)
	require.Empty(t, got["quiet-one"].Diagnoses)
}

// robotOrder returns the robots of a status table in printed order.
func robotOrder(t *testing.T, out string) []string {
	t.Helper()
	table, _, _ := strings.Cut(out, "\n\n")
	var names []string
	for _, l := range strings.Split(table, "\n")[1:] {
		names = append(names, strings.Fields(l)[0])
	}
	return names
}

// Redis down: the queue columns are still shown, the limiter's are "?",
// and the command fails.
func TestStatusRedisDown(t *testing.T) {
	t.Setenv(cli.EnvRedisAddr, "")
	f := newFixture(t)
	seedStatus(t, f)
	r := f.run(t, "", "status", "--redis", testenv.ClosedAddr(t), "--config", statusConfig(t, f))
	require.Error(t, r.err)
	require.Equal(t, 1, cli.ExitCode(r.err))
	require.ErrorContains(t, r.err, "limiter columns unknown")
	require.ErrorIs(t, r.err, limiter.ErrUnavailable)
	st := parseStatus(t, r.stdout)
	require.Equal(t, "?", st.rows["ops"]["COOL-OFF"])
	require.Equal(t, "3", st.rows["ops"]["BACKLOG"])
}

func TestStatusErrors(t *testing.T) {
	t.Setenv(cli.EnvRedisAddr, "")
	f := newFixture(t)

	r := f.run(t, "", "status", "--config", testenv.WriteFile(t, "bad.yaml", "robots: []\n"))
	require.Equal(t, 1, cli.ExitCode(r.err))
	require.ErrorContains(t, r.err, "at least one robot")

	r = runCmd(t, "", "--nats", f.url, "--prefix", "nosuchprefix", "status")
	require.Equal(t, 1, cli.ExitCode(r.err))
	require.ErrorContains(t, r.err, "NOSUCHPREFIX_OUT does not exist")

	t.Setenv("STATUS_TEST_NO_PASSWORD", "")
	r = f.run(t, "", "status", "--redis", testenv.RedisAddr(), "--config", statusConfig(t, f), "--redis-password-env", "STATUS_TEST_NO_PASSWORD")
	require.Equal(t, 1, cli.ExitCode(r.err))
	require.ErrorContains(t, r.err, "STATUS_TEST_NO_PASSWORD is not set")
}

// A prefix in robots.yaml that differs from --prefix is worth a warning:
// the file is probably another deployment's.
func TestStatusConfigPrefixMismatch(t *testing.T) {
	t.Setenv(cli.EnvRedisAddr, "")
	f := newFixture(t)
	path := testenv.WriteFile(t, "robots.yaml", `prefix: elsewhere
robots:
  - name: ops
    platform: dingtalk
    webhook: "https://oapi.dingtalk.com/robot/send?access_token=tok3n"
`)
	r := f.run(t, "", "status", "--config", path)
	require.NoError(t, r.err)
	require.Contains(t, r.stderr, `has prefix "elsewhere" but --prefix is "`+f.topo.Prefix+`"`)
}

func TestCeilSec(t *testing.T) {
	tests := []struct {
		in, want time.Duration
	}{
		{0, 0},
		{time.Millisecond, time.Second},
		{time.Second, time.Second},
		{8*time.Minute + 11*time.Second + 300*time.Millisecond, 8*time.Minute + 12*time.Second},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, ceilSec(tt.in), tt.in)
	}
	require.Equal(t, "1m2s", ceilSec(62*time.Second-time.Microsecond).String())
}

// TestDiagnose covers every diagnosis, alone and together.
func TestDiagnose(t *testing.T) {
	topo := stream.Topology{}
	cfg, err := config.Parse([]byte(`robots:
  - {name: ops, platform: dingtalk, webhook: "https://h/x?access_token=t0k", limit: 2}
`), testenv.LookupMap(nil))
	require.NoError(t, err)
	lim := func(s limiter.State) *limiterStatus {
		return &limiterStatus{state: s, limit: limiter.Limit{Max: 2, Window: time.Minute, Margin: 2 * time.Second}}
	}
	tests := []struct {
		name string
		row  robotStatus
		cfg  *config.Config
		want []string
	}{
		{name: "healthy and idle", row: robotStatus{Robot: "ops", RobotQueue: stream.RobotQueue{Consumer: true, Waiting: 1}}},
		{name: "delivering", row: robotStatus{Robot: "ops", RobotQueue: stream.RobotQueue{Backlog: 5, Consumer: true, Pending: 1}}},
		{name: "no consumer", row: robotStatus{Robot: "ops", RobotQueue: stream.RobotQueue{Backlog: 1}},
			want: []string{"1 message waiting and no consumer robot_ops yet: normal for up to 30s (workers create it when work arrives); if it lasts, is the robot configured on a running worker?"}},
		{name: "nobody pulls", row: robotStatus{Robot: "ops", RobotQueue: stream.RobotQueue{Backlog: 2, Consumer: true}},
			want: []string{"no worker is pulling (is the robot configured on a worker? are the workers running?)"}},
		{name: "redelivered", row: robotStatus{Robot: "ops", RobotQueue: stream.RobotQueue{Backlog: 1, Consumer: true, Pending: 1, Redelivered: 1}},
			want: []string{"the pending message was handed out more than once: deliveries are being retried, or a worker died holding it (see the workers' logs)"}},
		{name: "dead letters", row: robotStatus{Robot: "ops", RobotQueue: stream.RobotQueue{Consumer: true, Waiting: 1, DeadLetters: 3}},
			want: []string{"3 dead letters: producer dlq list --robot ops"}},
		{name: "cool-off and quiet", row: robotStatus{Robot: "ops", RobotQueue: stream.RobotQueue{Consumer: true, Waiting: 1},
			Limiter: lim(limiter.State{CoolOffLeft: 8*time.Minute + 11500*time.Millisecond, QuietLeft: 40200 * time.Millisecond})},
			want: []string{"cooling off for 8m12s (the platform throttled it)",
				"restart guard: quiet for 41s (the limiter state is new: after a first start, a Redis restart or evictions, robots wait the longest cool-off, at least one window)"}},
		{name: "full window with a backlog", row: robotStatus{Robot: "ops", RobotQueue: stream.RobotQueue{Backlog: 1, Consumer: true, Pending: 1},
			Limiter: lim(limiter.State{InWindow: 2, NextSlot: 30 * time.Second})},
			want: []string{"rate limit: 2/2 sent in the last 1m2s; next slot in 30s"}},
		{name: "full window, nothing waiting", row: robotStatus{Robot: "ops", RobotQueue: stream.RobotQueue{Consumer: true, Waiting: 1},
			Limiter: lim(limiter.State{InWindow: 2, NextSlot: 30 * time.Second})}},
		{name: "limiter unreadable", row: robotStatus{Robot: "ops", RobotQueue: stream.RobotQueue{Consumer: true, Waiting: 1},
			Limiter: &limiterStatus{Error: "down", state: limiter.State{CoolOffLeft: time.Minute}}}},
		{name: "not in the config", cfg: cfg, row: robotStatus{Robot: "stray", RobotQueue: stream.RobotQueue{Backlog: 1, Consumer: true, Pending: 1}},
			want: []string{"not in robots.yaml: workers using it dead-letter this robot's messages as unknown"}},
		{name: "in the config", cfg: cfg, row: robotStatus{Robot: "ops", RobotQueue: stream.RobotQueue{Backlog: 1, Consumer: true, Pending: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, diagnose(topo, tt.row, tt.cfg, "robots.yaml"))
		})
	}
}

// With --redis, status reads the workers' presence: a robot a worker
// cannot serve because a limit was reached says so, and a backlog of a
// robot no live worker has configured is named, however fresh.
func TestStatusPresence(t *testing.T) {
	t.Setenv(cli.EnvRedisAddr, "")
	ctx := context.Background()
	f := newFixture(t)
	seedStatus(t, f) // ops: 3 queued, no consumer; dev: 2 queued, a consumer nobody pulls
	rdb, _ := statusRedis(t, f, true)
	p := ledger.NewRedis(rdb, f.topo.Prefix, 0)
	require.NoError(t, p.Announce(ctx, ledger.Announcement{Worker: "host-1/abc", Robots: []string{"ops", "quiet-one"}, TTL: time.Minute,
		Unserved: map[string]string{"quiet-one": "nats: API error: code=400 err_code=10026 description=maximum consumers limit reached"}}))

	r := f.run(t, "", "status", "--redis", testenv.RedisAddr())
	require.NoError(t, r.err, r.stderr)
	st := parseStatus(t, r.stdout)
	require.Equal(t, map[string][]string{
		"dev": {
			"2 messages waiting, and no running worker has this robot configured: is it in a worker's configuration, and are the workers running?",
			"1 dead letter: producer dlq list --robot dev",
		},
	}, st.diagnoses, "ops is served (its consumer comes with the scan); quiet-one has no row without --config")

	r = f.run(t, "", "status", "--redis", testenv.RedisAddr(), "--robot", "quiet-one")
	require.NoError(t, r.err, r.stderr)
	st = parseStatus(t, r.stdout)
	require.Equal(t, map[string][]string{
		"quiet-one": {"not served: worker host-1/abc reached a limit creating its consumer (nats: API error: code=400 err_code=10026 description=maximum consumers limit reached): " +
			"raise the limit; its log names the robots, botrelay_unserved_robots counts them"},
	}, st.diagnoses)

	// Presence unreadable: a warning, and the queue diagnoses alone.
	r = f.run(t, "", "status", "--redis", testenv.ClosedAddr(t), "--robot", "dev")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stderr, "warning: the workers' presence was not read")
}
