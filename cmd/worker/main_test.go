package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
)

// Credentials used by the tests: never in any output.
const (
	dingToken  = "dtTokenS3cret"
	dingSecret = "SECdingS3cret"
	popoHook   = "popoHookS3cret"
	popoSecret = "popoSignS3cret"
)

func requireNoCredentials(t *testing.T, outputs ...string) {
	t.Helper()
	all := strings.Join(outputs, "\n")
	for _, s := range []string{dingToken, dingSecret, popoHook, popoSecret} {
		require.NotContains(t, all, s, "a credential leaked into the output")
	}
}

func TestParseFlags(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		f, err := parseFlags([]string{"--config", "c.yaml"}, io.Discard, testenv.LookupMap(nil))
		require.NoError(t, err)
		require.Equal(t, cli.DefaultNATSURL, f.natsURL)
		require.Equal(t, defaultRedisAddr, f.redisAddr)
		require.Equal(t, "redis", f.limiter)
		require.Equal(t, ":9090", f.metricsAddr)
		require.Equal(t, "text", f.logFormat)
		require.True(t, f.restartGuard)
		require.Equal(t, 2*time.Second, f.configPoll)
	})
	t.Run("environment", func(t *testing.T) {
		f, err := parseFlags([]string{"--config", "c.yaml"}, io.Discard, testenv.LookupMap(map[string]string{
			cli.EnvNATSURL: "nats://nats:4222", cli.EnvRedisAddr: "redis:6379"}))
		require.NoError(t, err)
		require.Equal(t, "nats://nats:4222", f.natsURL)
		require.Equal(t, "redis:6379", f.redisAddr)
	})
	t.Run("flags win over the environment", func(t *testing.T) {
		f, err := parseFlags([]string{"--config", "c.yaml", "--nats", "nats://a:1", "--redis", "b:2", "--metrics-addr", "",
			"--log-level", "debug", "--log-format", "json", "--limiter", "memory"}, io.Discard,
			testenv.LookupMap(map[string]string{cli.EnvNATSURL: "nats://nats:4222", cli.EnvRedisAddr: "redis:6379"}))
		require.NoError(t, err)
		require.Equal(t, "nats://a:1", f.natsURL)
		require.Equal(t, "b:2", f.redisAddr)
		require.Empty(t, f.metricsAddr)
		require.Equal(t, "DEBUG", f.logLevel.String())
		require.Equal(t, "json", f.logFormat)
		require.Equal(t, "memory", f.limiter)
	})

	bad := []struct {
		name string
		args []string
		want string
	}{
		{name: "no config", args: nil, want: "--config is required"},
		{name: "bad limiter", args: []string{"--config", "c", "--limiter", "etcd"}, want: "--limiter must be redis or memory"},
		{name: "bad log format", args: []string{"--config", "c", "--log-format", "xml"}, want: "--log-format"},
		{name: "bad log level", args: []string{"--config", "c", "--log-level", "loud"}, want: "log-level"},
		{name: "bad connect wait", args: []string{"--config", "c", "--nats-connect-wait", "0s"}, want: "--nats-connect-wait"},
		{name: "stray argument", args: []string{"--config", "c", "extra"}, want: "unexpected arguments"},
		{name: "limiter state with redis", args: []string{"--config", "c", "--limiter-state", "s.json"}, want: "--limiter-state needs --limiter memory"},
		{name: "unknown flag", args: []string{"--config", "c", "--bogus"}, want: "bogus"},
		{name: "negative config poll", args: []string{"--config", "c", "--config-poll", "-1s"}, want: "--config-poll must not be negative"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard, testenv.LookupMap(nil))
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, 2, cli.ExitCode(err))
		})
	}
}

const goodConfig = `
prefix: checked
platforms:
  popo:
    cool_off: 5m
robots:
  - name: ding
    platform: dingtalk
    webhook: "${DING_WEBHOOK}"
    secret: "${DING_SECRET}"
    keywords: [alert]
  - name: popo
    platform: popo
    webhook: "https://open.popo.netease.com/open-apis/robots/v1/hook/` + popoHook + `"
    secret_env: POPO_SECRET
    limit: 30
`

func TestCheckConfig(t *testing.T) {
	path := testenv.WriteFile(t, "robots.yaml", goodConfig)
	var stdout, stderr bytes.Buffer
	err := runEnv(context.Background(), []string{"--check-config", "--config", path}, &stdout, &stderr, cli.Env{Lookup: testenv.LookupMap(map[string]string{
		"DING_WEBHOOK": "https://oapi.dingtalk.com/robot/send?access_token=" + dingToken,
		"DING_SECRET":  dingSecret,
		"POPO_SECRET":  popoSecret,
	})})
	require.NoError(t, err)
	out := stdout.String()
	for _, want := range []string{
		path + ": OK, 2 robots",
		"prefix checked",
		"platform dingtalk 20 per 1m0s (+5s margin), cool-off 10m0s",
		"platform popo     60 per 1m0s (+5s margin), cool-off 5m0s",
		"robot ding", "dingtalk 20 per 1m0s", "signed (inline secret)", `keywords ["alert"]`,
		"robot popo", "popo     30 per 1m0s", "signed (secret_env POPO_SECRET)",
	} {
		require.Contains(t, out, want)
	}
	require.NotContains(t, out, "https://", "no webhook in the summary")
	requireNoCredentials(t, out, stderr.String())
}

func TestCheckConfigBroken(t *testing.T) {
	path := testenv.WriteFile(t, "robots.yaml", `
concurrency: -1
robots:
  - name: ding
    platform: dingtalk
    webhook: "ftp://oapi.dingtalk.com/robot/send?access_token=`+dingToken+`"
    secret: `+dingSecret+`
    secret_env: DING_SECRET
  - name: ding
    platform: slack
    webhook: "https://open.popo.netease.com/open-apis/robots/v1/hook/`+popoHook+`"
    limit: 99
`)
	var stdout, stderr bytes.Buffer
	err := runEnv(context.Background(), []string{"--check-config", "--config", path}, &stdout, &stderr, cli.Env{Lookup: testenv.LookupMap(nil)})
	require.Error(t, err)
	require.Equal(t, 1, cli.ExitCode(err))
	for _, want := range []string{
		path + ": config: invalid",
		"concurrency: must be positive",
		`robots[0] "ding": webhook: scheme must be https`,
		`robots[0] "ding": secret: set only one of`,
		`robots[1] "ding": name: duplicate of robots[0]`,
		`robots[1] "ding": platform: not supported`,
	} {
		require.ErrorContains(t, err, want)
	}
	require.Empty(t, stdout.String())
	requireNoCredentials(t, err.Error(), stdout.String(), stderr.String())

	err = runEnv(context.Background(), []string{"--check-config", "--config", filepath.Join(t.TempDir(), "none.yaml")},
		io.Discard, io.Discard, cli.Env{Lookup: testenv.LookupMap(nil)})
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Equal(t, 1, cli.ExitCode(err))
}

// TestCheckExampleConfig checks examples/robots.yaml with the variables its
// header documents.
func TestCheckExampleConfig(t *testing.T) {
	vars := map[string]string{
		"DINGTALK_OPS_WEBHOOK": "https://oapi.dingtalk.com/robot/send?access_token=" + dingToken,
		"DINGTALK_OPS_SECRET":  dingSecret,
		"POPO_DEPLOY_WEBHOOK":  "https://open.popo.netease.com/open-apis/robots/v1/hook/" + popoHook,
	}
	var stdout bytes.Buffer
	err := runEnv(context.Background(), []string{"--check-config", "--config", "../../examples/robots.yaml"}, &stdout, io.Discard,
		cli.Env{Lookup: testenv.LookupMap(vars)})
	require.NoError(t, err)
	require.Contains(t, stdout.String(), "robot ops-alerts")
	require.Contains(t, stdout.String(), "robot deploys")
	requireNoCredentials(t, stdout.String())
}

// instance is one run of the worker command in the background.
type instance struct {
	t       *testing.T
	cancel  context.CancelFunc
	done    chan error
	metrics string // base URL of the metrics server
	stderr  *testenv.SyncBuffer
}

func start(t *testing.T, args []string, vars map[string]string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	in := &instance{t: t, cancel: cancel, done: make(chan error, 1), stderr: &testenv.SyncBuffer{}}
	go func() {
		in.done <- runEnv(ctx, append([]string{"--metrics-addr", "127.0.0.1:0"}, args...), io.Discard, in.stderr,
			cli.Env{Lookup: testenv.LookupMap(vars), Listening: func(a net.Addr) { addr <- a }})
	}()
	select {
	case a := <-addr:
		in.metrics = "http://" + a.String()
	case err := <-in.done:
		t.Fatalf("run ended before serving metrics: %v\n%s", err, in.stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("no metrics server after 10s")
	}
	t.Cleanup(func() { in.stop() })
	return in
}

// stop cancels the run and returns its error.
func (in *instance) stop() error {
	in.t.Helper()
	in.cancel()
	select {
	case err := <-in.done:
		in.done <- err // later calls see it too
		return err
	case <-time.After(30 * time.Second):
		in.t.Fatal("run did not return within 30s of cancellation")
		return nil
	}
}

func (in *instance) get(path string) (int, string) {
	in.t.Helper()
	resp, err := http.Get(in.metrics + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(in.t, err)
	return resp.StatusCode, string(b)
}

func (in *instance) waitStatus(path string, code int) string {
	in.t.Helper()
	var body string
	testenv.Eventually(in.t, 20*time.Second, func() bool {
		var got int
		got, body = in.get(path)
		return got == code
	}, "GET %s: want %d, last body %q; logs:\n%s", path, code, body, in.stderr.String())
	return body
}

func TestRunDelivers(t *testing.T) {
	for _, lim := range []string{"redis", "memory"} {
		t.Run(lim, func(t *testing.T) {
			natsURL := testenv.NATSURL(t)
			_, js := testenv.Connect(t, natsURL)
			topo := testenv.Topology(t, js)
			rdb, _ := testenv.Redis(t)
			t.Cleanup(func() { // the worker's keys live under the topology prefix
				ctx := context.Background()
				if keys, _ := rdb.Keys(ctx, topo.Prefix+":*").Result(); len(keys) > 0 {
					_ = rdb.Del(ctx, keys...).Err()
				}
			})

			sim := robotsim.NewServer(robotsim.Config{Logger: testLogger()})
			t.Cleanup(sim.Close)
			require.NoError(t, sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: dingToken, Secret: dingSecret, Keywords: []string{"alert"}}))
			require.NoError(t, sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: popoHook, Secret: popoSecret}))

			path := testenv.WriteFile(t, "robots.yaml", `
prefix: `+topo.Prefix+`
robots:
  - name: ding
    platform: dingtalk
    webhook: "${DING_WEBHOOK}"
    secret: "${DING_SECRET}"
    keywords: [alert]
  - name: popo
    platform: popo
    webhook: "`+sim.WebhookURL(popoHook)+`"
    secret_env: POPO_SECRET
`)
			in := start(t, []string{"--config", path, "--nats", natsURL, "--redis", testenv.RedisAddr(),
				"--limiter", lim, "--restart-guard=false", "--log-level", "debug", "--log-format", "json", "--name", "test-worker"},
				map[string]string{
					"DING_WEBHOOK": sim.WebhookURL(dingToken),
					"DING_SECRET":  dingSecret,
					"POPO_SECRET":  popoSecret,
				})
			require.Equal(t, "ok\n", in.waitStatus("/healthz", http.StatusOK))
			ready := in.waitStatus("/readyz", http.StatusOK)
			require.Contains(t, ready, "nats: ok")
			if lim == "redis" {
				require.Contains(t, ready, "redis: ok")
				// The worker announces itself and the robots it serves, for
				// the sweeps of other workers and their share of the robots.
				testenv.Eventually(t, 10*time.Second, func() bool {
					m, err := ledger.NewRedis(rdb, topo.Prefix, 0).Members(context.Background())
					return err == nil && len(m.Workers) == 1 && m.Served("ding") && m.Served("popo") &&
						strings.HasPrefix(m.Workers[0].Worker, "test-worker/")
				}, "the worker announced ding and popo")
			}

			pub, err := publisher.New(js, topo)
			require.NoError(t, err)
			ctx := context.Background()
			_, err = pub.Publish(ctx, envelope.New("ding", envelope.Message{Text: &envelope.Text{Content: "alert: disk full"}}))
			require.NoError(t, err)
			_, err = pub.Publish(ctx, envelope.New("popo", envelope.Message{Text: &envelope.Text{Content: "deployed v2"}}))
			require.NoError(t, err)

			testenv.Eventually(t, 20*time.Second, func() bool {
				return len(sim.Received(dingToken)) == 1 && len(sim.Received(popoHook)) == 1
			}, "the simulator did not receive both messages; logs:\n%s", in.stderr.String())
			require.Equal(t, "alert: disk full", sim.Received(dingToken)[0].Content)
			require.Equal(t, "deployed v2", sim.Received(popoHook)[0].Content)
			requirePostedOnce(t, sim, dingToken, "alert: disk full")
			requirePostedOnce(t, sim, popoHook, "deployed v2")

			// The simulator records a message before the worker counts it.
			var metrics string
			testenv.Eventually(t, 5*time.Second, func() bool {
				_, metrics = in.get("/metrics")
				return strings.Contains(metrics, `botrelay_delivery_attempts_total{outcome="success",robot="ding"} 1`) &&
					strings.Contains(metrics, `botrelay_delivery_attempts_total{outcome="success",robot="popo"} 1`)
			}, "delivery counters")
			require.Contains(t, metrics, "go_goroutines")
			require.Contains(t, metrics, "process_start_time_seconds")

			require.NoError(t, in.stop())
			// Stopped (drained): nothing more was posted meanwhile.
			requirePostedOnce(t, sim, dingToken, "alert: disk full")
			requirePostedOnce(t, sim, popoHook, "deployed v2")
			logs := in.stderr.String()
			require.Contains(t, logs, "worker drained")
			require.Contains(t, logs, `"webhook":"http://127.0.0.1:`, "webhooks are logged redacted")
			if lim == "memory" {
				require.Contains(t, logs, "--limiter memory")
			}
			requireNoCredentials(t, logs, metrics, ready)
		})
	}
}

func TestRunRedisDownAtStart(t *testing.T) {
	natsURL := testenv.NATSURL(t)
	_, js := testenv.Connect(t, natsURL)
	topo := testenv.Topology(t, js)
	sim := robotsim.NewServer(robotsim.Config{Logger: testLogger()})
	t.Cleanup(sim.Close)
	require.NoError(t, sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: popoHook}))
	path := testenv.WriteFile(t, "robots.yaml", "prefix: "+topo.Prefix+"\nrobots:\n  - name: popo\n    platform: popo\n    webhook: "+sim.WebhookURL(popoHook)+"\n")

	in := start(t, []string{"--config", path, "--nats", natsURL, "--redis", testenv.ClosedAddr(t)}, nil)
	in.waitStatus("/healthz", http.StatusOK)
	require.Contains(t, in.waitStatus("/readyz", http.StatusServiceUnavailable), "redis: unreachable")
	require.Contains(t, in.stderr.String(), "Redis unreachable at start")

	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	_, err = pub.Publish(context.Background(), envelope.New("popo", envelope.Message{Text: &envelope.Text{Content: "held"}}))
	require.NoError(t, err)
	// Fail closed: the limiter's errors are counted and nothing is sent.
	testenv.Eventually(t, 20*time.Second, func() bool {
		_, m := in.get("/metrics")
		return strings.Contains(m, "botrelay_limiter_errors_total ") && !strings.Contains(m, "botrelay_limiter_errors_total 0")
	}, "no limiter errors counted")
	require.Empty(t, sim.Requests(popoHook), "nothing is posted without the limiter")
	require.NoError(t, in.stop())
}

// TestRunRestartGuardByDefault: on a Redis state this fresh, the limiter
// holds the first message for a window unless --restart-guard=false.
func TestRunRestartGuardByDefault(t *testing.T) {
	st := newTestStack(t)
	natsURL, js, topo, sim := st.natsURL, st.js, st.topo, st.sim
	require.NoError(t, sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: popoHook}))
	path := testenv.WriteFile(t, "robots.yaml", "prefix: "+topo.Prefix+"\nrobots:\n  - name: popo\n    platform: popo\n    webhook: "+sim.WebhookURL(popoHook)+"\n")

	in := start(t, []string{"--config", path, "--nats", natsURL, "--redis", testenv.RedisAddr()}, nil)
	in.waitStatus("/readyz", http.StatusOK)
	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	_, err = pub.Publish(context.Background(), envelope.New("popo", envelope.Message{Text: &envelope.Text{Content: "held"}}))
	require.NoError(t, err)
	testenv.Eventually(t, 20*time.Second, func() bool {
		_, m := in.get("/metrics")
		return strings.Contains(m, `botrelay_limiter_waits_total{robot="popo"} 1`)
	}, "the message did not wait for the limiter")
	require.Empty(t, sim.Requests(popoHook), "nothing is posted during the guard's window")
	require.NoError(t, in.stop())
	require.Contains(t, in.stderr.String(), "restart_quiet=10m0s", "the guard's quiet time covers the longest cool-off")
}

// A Redis that may evict keys (maxmemory-policy other than noeviction)
// would drop windows and cool-offs: the worker refuses to start, naming
// the policy.
func TestRunRefusesEvictingRedis(t *testing.T) {
	natsURL := testenv.NATSURL(t)
	_, js := testenv.Connect(t, natsURL)
	topo := testenv.Topology(t, js)
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	require.NoError(t, rdb.ConfigSet(context.Background(), "maxmemory-policy", "volatile-lru").Err())
	path := testenv.WriteFile(t, "robots.yaml", "prefix: "+topo.Prefix+"\nrobots:\n  - name: popo\n    platform: popo\n    webhook: https://h/open-apis/robots/v1/hook/"+popoHook+"\n")

	var stderr testenv.SyncBuffer
	err := runEnv(context.Background(), []string{"--config", path, "--nats", natsURL, "--redis", srv.Addr, "--metrics-addr", ""},
		io.Discard, &stderr, cli.Env{Lookup: testenv.LookupMap(nil)})
	require.ErrorIs(t, err, limiter.ErrEvictionPolicy)
	require.ErrorContains(t, err, "maxmemory-policy is volatile-lru; the limiter needs noeviction")
	require.Equal(t, 1, cli.ExitCode(err))
	requireNoCredentials(t, err.Error(), stderr.String())
}

func TestRunNATSUnreachable(t *testing.T) {
	path := testenv.WriteFile(t, "robots.yaml", goodConfig)
	var stderr testenv.SyncBuffer
	startAt := time.Now()
	err := runEnv(context.Background(), []string{"--config", path, "--nats", "nats://user:hunter2@" + testenv.ClosedAddr(t),
		"--nats-connect-wait", "300ms", "--metrics-addr", ""}, io.Discard, &stderr,
		cli.Env{Lookup: testenv.LookupMap(map[string]string{"DING_WEBHOOK": "https://oapi.dingtalk.com/robot/send?access_token=" + dingToken,
			"DING_SECRET": dingSecret, "POPO_SECRET": popoSecret})})
	require.ErrorContains(t, err, "connect to NATS at nats://REDACTED@")
	require.Less(t, time.Since(startAt), 10*time.Second)
	require.Equal(t, 1, cli.ExitCode(err))
	require.NotContains(t, err.Error()+stderr.String(), "hunter2")
	requireNoCredentials(t, err.Error(), stderr.String())
}

func TestRunRedisPasswordEnvUnset(t *testing.T) {
	natsURL := testenv.NATSURL(t)
	path := testenv.WriteFile(t, "robots.yaml", "robots:\n  - name: popo\n    platform: popo\n    webhook: https://example.com/hook/x\n")
	err := runEnv(context.Background(), []string{"--config", path, "--nats", natsURL, "--metrics-addr", "",
		"--redis-password-env", "REDIS_PW"}, io.Discard, io.Discard, cli.Env{Lookup: testenv.LookupMap(nil)})
	require.ErrorContains(t, err, "environment variable REDIS_PW is not set")
}

func testLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestK8sManifests checks that deploy/k8s hangs together: the ConfigMap's
// robots.yaml passes --check-config with the Secret's keys as environment,
// and the Deployment's args are flags the worker accepts.
func TestK8sManifests(t *testing.T) {
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	readYAML(t, "../../deploy/k8s/configmap.yaml", &cm)
	var secret struct {
		StringData map[string]string `yaml:"stringData"`
	}
	readYAML(t, "../../deploy/k8s/secret.yaml", &secret)
	var deploy struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Args []string `yaml:"args"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	readYAML(t, "../../deploy/k8s/deployment.yaml", &deploy)

	path := testenv.WriteFile(t, "robots.yaml", cm.Data["robots.yaml"])
	var stdout bytes.Buffer
	err := runEnv(context.Background(), []string{"--check-config", "--config", path}, &stdout, io.Discard,
		cli.Env{Lookup: testenv.LookupMap(secret.StringData)})
	require.NoError(t, err)
	require.Contains(t, stdout.String(), "OK, 2 robots")

	require.Len(t, deploy.Spec.Template.Spec.Containers, 1)
	args := deploy.Spec.Template.Spec.Containers[0].Args
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "$(POD_NAME)", "botrelay-worker-abc")
	}
	f, err := parseFlags(args, io.Discard, testenv.LookupMap(nil))
	require.NoError(t, err)
	require.Equal(t, "/etc/botrelay/robots.yaml", f.configPath)
	require.Equal(t, "REDIS_PASSWORD", f.redisPasswordEnv)
	require.Contains(t, secret.StringData, f.redisPasswordEnv)
	require.Equal(t, ":9090", f.metricsAddr)
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, v), path)
}

// The worker runs on a Redis Cluster given as comma-separated nodes: the
// limiter keeps each decision in one slot and the ledger records deliveries.
func TestRunOnRedisCluster(t *testing.T) {
	cluster := testenv.StartRedisCluster(t)
	natsURL := testenv.NATSURL(t)
	_, js := testenv.Connect(t, natsURL)
	topo := testenv.Topology(t, js)
	sim := robotsim.NewServer(robotsim.Config{Logger: testLogger()})
	t.Cleanup(sim.Close)
	require.NoError(t, sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: popoHook, Secret: popoSecret}))
	path := testenv.WriteFile(t, "robots.yaml", `
prefix: `+topo.Prefix+`
robots:
  - name: popo
    platform: popo
    webhook: "`+sim.WebhookURL(popoHook)+`"
    secret_env: POPO_SECRET
`)
	in := start(t, []string{"--config", path, "--nats", natsURL, "--redis", strings.Join(cluster.Addrs, ","),
		"--restart-guard=false"}, map[string]string{"POPO_SECRET": popoSecret})
	require.Contains(t, in.waitStatus("/readyz", http.StatusOK), "redis: ok")

	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	env := envelope.New("popo", envelope.Message{Text: &envelope.Text{Content: "on a cluster"}})
	_, err = pub.Publish(context.Background(), env)
	require.NoError(t, err)
	testenv.Eventually(t, 20*time.Second, func() bool { return len(sim.Received(popoHook)) == 1 },
		"not delivered; logs:\n%s", in.stderr.String())

	// On a cluster an entry carries its robot's limiter key as hash tag:
	// a reader finds the keys where the workers publish them.
	tags, err := limiter.LookupKeys(context.Background(), cluster.Client(t), topo.Prefix)
	require.NoError(t, err)
	require.NotEmpty(t, tags["popo"])
	led := ledger.NewRedis(cluster.Client(t), topo.Prefix, time.Hour).WithHashTag(ledger.NewRobotTags(tags).Tag)
	testenv.Eventually(t, 5*time.Second, func() bool {
		st, err := led.Get(context.Background(), stream.MsgID("popo", env.ID))
		return err == nil && st.Delivered
	}, "the ledger on the cluster marks the message delivered")
	require.NoError(t, in.stop())
	requirePostedOnce(t, sim, popoHook, "on a cluster")
}

// requirePostedOnce asserts that the simulator's robot token was sent
// exactly one request, accepted, carrying content.
func requirePostedOnce(t *testing.T, sim *robotsim.Server, token, content string) {
	t.Helper()
	p := testenv.SplitPosts(sim.Requests(token), testenv.ByContent)
	require.NoError(t, p.Check([]string{content}, 0), "robot %s", robotsim.Redact(token))
	require.Empty(t, p.Refused)
	require.Empty(t, p.Faulted)
}

// A single worker with --limiter memory restarted right after a burst:
// without a state file (the first start) it holds every robot for the quiet
// time, the longest cool-off or window+margin; after a clean shutdown its
// state file restores the window, so the restarted worker sends no fresh
// burst into the window the platform still counts (the simulator sees no
// breach), and it needs no quiet time.
func TestRunMemoryLimiterRestart(t *testing.T) {
	const (
		window  = 3 * time.Second
		margin  = 200 * time.Millisecond
		coolOff = 3500 * time.Millisecond
		burst   = 3
	)
	natsURL := testenv.NATSURL(t)
	_, js := testenv.Connect(t, natsURL)
	topo := testenv.Topology(t, js)
	sim := robotsim.NewServer(robotsim.Config{Window: window, Ban: time.Minute, Logger: testLogger()})
	t.Cleanup(sim.Close)
	require.NoError(t, sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: dingToken, Limit: burst}))
	path := testenv.WriteFile(t, "robots.yaml", fmt.Sprintf(`prefix: %s
platforms:
  dingtalk: {limit: %d, window: %s, margin: %s, cool_off: %s}
robots:
  - name: ding
    platform: dingtalk
    webhook: "%s"
`, topo.Prefix, burst, window, margin, coolOff, sim.WebhookURL(dingToken)))
	state := filepath.Join(t.TempDir(), "limiter.json")
	args := []string{"--config", path, "--nats", natsURL, "--limiter", "memory", "--limiter-state", state}
	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	publish := func(n int) {
		for i := range n {
			_, err := pub.Publish(context.Background(), envelope.New("ding", envelope.Message{Text: &envelope.Text{Content: fmt.Sprintf("m%d", i)}}))
			require.NoError(t, err)
		}
	}
	received := func(n int) {
		testenv.Eventually(t, 30*time.Second, func() bool { return len(sim.Received(dingToken)) >= n },
			"want %d received, have %d", n, len(sim.Received(dingToken)))
	}

	// First start: no state file, so nothing is granted for the quiet time.
	started := time.Now()
	in := start(t, args, nil)
	publish(burst)
	received(burst)
	first := sim.Received(dingToken)[0].At
	require.GreaterOrEqual(t, first.Sub(started), coolOff, "granted inside the quiet time")
	require.NoError(t, in.stop())
	require.Contains(t, in.stderr.String(), "limiter state unknown: holding every robot for the quiet time")
	_, err = os.Stat(state)
	require.NoError(t, err, "a clean shutdown saves the state")

	// Restarted at once, from the state file: the window of the burst is
	// still full.
	restarted := time.Now()
	require.Less(t, restarted.Sub(first), window, "test too slow to prove anything")
	in = start(t, args, nil)
	publish(burst)
	received(2 * burst)
	got := sim.Received(dingToken)
	require.GreaterOrEqual(t, got[burst].At.Sub(got[0].At), window, "a fresh burst inside the window")
	require.Less(t, got[burst].At.Sub(restarted), coolOff, "a restored state needs no quiet time")
	require.Zero(t, sim.Stats(dingToken).Breaches)
	require.NoError(t, in.stop())
	logs := in.stderr.String()
	require.Contains(t, logs, "limiter state restored")
	require.NotContains(t, logs, "holding every robot for the quiet time")
	requireNoCredentials(t, logs)
}

// The worker keeps a robot's window under the identity of its webhook, not
// under its name: a renamed robot, or a second name for it, finds the same
// window.
func TestRunKeysLimiterByIdentity(t *testing.T) {
	natsURL := testenv.NATSURL(t)
	_, js := testenv.Connect(t, natsURL)
	topo := testenv.Topology(t, js)
	rdb, _ := testenv.Redis(t)
	ctx := context.Background()
	t.Cleanup(func() {
		if keys, _ := rdb.Keys(ctx, topo.Prefix+":*").Result(); len(keys) > 0 {
			_ = rdb.Del(ctx, keys...).Err()
		}
	})
	sim := robotsim.NewServer(robotsim.Config{Logger: testLogger()})
	t.Cleanup(sim.Close)
	require.NoError(t, sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: popoHook}))
	webhook := sim.WebhookURL(popoHook)
	path := testenv.WriteFile(t, "robots.yaml", "prefix: "+topo.Prefix+"\nrobots:\n  - name: popo\n    platform: popo\n    webhook: "+webhook+"\n")
	identity, err := config.RobotIdentity(config.POPO, webhook)
	require.NoError(t, err)

	in := start(t, []string{"--config", path, "--nats", natsURL, "--redis", testenv.RedisAddr(), "--restart-guard=false"}, nil)
	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	_, err = pub.Publish(ctx, envelope.New("popo", envelope.Message{Text: &envelope.Text{Content: "hi"}}))
	require.NoError(t, err)
	testenv.Eventually(t, 20*time.Second, func() bool { return len(sim.Received(popoHook)) == 1 }, "not delivered")
	require.NoError(t, in.stop())

	n, err := rdb.ZCard(ctx, topo.Prefix+":{"+identity+"}:w").Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the grant is recorded under the identity")
	require.Zero(t, rdb.Exists(ctx, topo.Prefix+":{popo}:w").Val(), "nothing under the name")
	require.Contains(t, in.stderr.String(), "limit_key="+identity)
}
