package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/testenv"
)

func TestParseFlagsListen(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // "" accepted
	}{
		{name: "default loopback", args: nil},
		{name: "ipv6 loopback", args: []string{"--listen", "[::1]:8081"}},
		{name: "localhost", args: []string{"--listen", "localhost:0"}},
		{name: "all interfaces refused", args: []string{"--listen", ":8081"}, want: "beyond loopback"},
		{name: "pod address refused", args: []string{"--listen", "10.0.0.7:8081"}, want: "beyond loopback"},
		{name: "all interfaces with a token", args: []string{"--listen", ":8081", "--auth-token-env", "T"}},
		{name: "all interfaces behind a proxy", args: []string{"--listen", "0.0.0.0:8081", "--auth-proxy-header", "X-Auth-Request-User"}},
		{name: "bad refresh", args: []string{"--refresh", "0s"}, want: "--refresh"},
		{name: "stray argument", args: []string{"x"}, want: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(append([]string{"--config", "c.yaml"}, tt.args...), io.Discard, testenv.LookupMap(nil))
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, 2, cli.ExitCode(err))
		})
	}
	_, err := parseFlags(nil, io.Discard, testenv.LookupMap(nil))
	require.ErrorContains(t, err, "--config is required")
}

// Credentials in the test configuration: they must never be read into a
// page or an answer.
const (
	secretInline = "SECinl1neS3cret"
	secretEnv    = "SECenvS3cret"
	webhookToken = "webh00kT0ken"
)

func secretConfig(t *testing.T, prefix string) string {
	t.Helper()
	return testenv.WriteFile(t, "robots.yaml", `prefix: `+prefix+`
robots:
  - name: ops
    platform: dingtalk
    webhook: "https://oapi.dingtalk.com/robot/send?access_token=`+webhookToken+`"
    secret: "`+secretInline+`"
    keywords: [alert]
  - name: deploys
    platform: popo
    webhook: "${POPO_WEBHOOK}"
    secret_env: POPO_SECRET
    limit: 30
  - name: filed
    platform: dingtalk
    webhook: "https://oapi.dingtalk.com/robot/send?access_token=x"
    secret_file: /nonexistent/secret
`)
}

func TestLoadRobotsReadsNoSecret(t *testing.T) {
	path := secretConfig(t, "cons")
	// Neither POPO_WEBHOOK nor POPO_SECRET is set and the secret file does
	// not exist: the console does not need them.
	cfg, err := loadRobots(path, testenv.LookupMap(nil))
	require.NoError(t, err)
	require.Equal(t, "cons", cfg.Prefix)
	require.Equal(t, []string{"ops", "deploys", "filed"}, cfg.Names())
	for _, rb := range cfg.Robots {
		require.Empty(t, rb.Secret, rb.Name)
		require.True(t, cli.IsPlaceholder(rb.Webhook), rb.Name)
	}
	rb, _ := cfg.Robot("deploys")
	require.Equal(t, 30, cfg.Limit(rb).Max)
}

// TestRunServesWithoutSecrets runs the command and reads every page and
// API answer: no credential of the configuration appears.
func TestRunServesWithoutSecrets(t *testing.T) {
	natsURL := testenv.NATSURL(t)
	_, js := testenv.Connect(t, natsURL)
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(context.Background(), js))
	path := secretConfig(t, topo.Prefix)
	base, logs := startConsole(t, []string{"--config", path, "--nats", natsURL, "--redis", testenv.RedisAddr(), "--refresh", "200ms"},
		map[string]string{"POPO_SECRET": secretEnv, "POPO_WEBHOOK": "https://open.popo.netease.com/open-apis/robots/v1/hook/" + webhookToken})
	var all []string
	for _, p := range []string{"/", "/deadletters", "/api/v1/robots", "/api/v1/deadletters", "/api/v1/charts"} {
		var body string
		testenv.Eventually(t, 10*time.Second, func() bool {
			resp, err := http.Get(base + p)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
			return resp.StatusCode == http.StatusOK
		}, "GET %s", p)
		all = append(all, body)
	}
	require.Contains(t, all[0], "ops")
	require.Contains(t, all[2], `"name": "deploys"`)
	out := strings.Join(append(all, logs.String()), "\n")
	for _, s := range []string{secretInline, secretEnv, webhookToken} {
		require.NotContains(t, out, s)
	}
}

// startConsole runs the command until cleanup and returns its base URL.
func startConsole(t *testing.T, args []string, env map[string]string) (string, *testenv.SyncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	logs := &testenv.SyncBuffer{}
	go func() {
		done <- runEnv(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), io.Discard, logs,
			cli.Env{Lookup: testenv.LookupMap(env), Listening: func(a net.Addr) { addr <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("console did not stop")
		}
	})
	select {
	case a := <-addr:
		return "http://" + a.String(), logs
	case err := <-done:
		t.Fatalf("console ended: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		t.Fatal("console not listening after 10s")
	}
	return "", nil
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestK8sManifest: deploy/k8s/console.yaml's args are flags the console
// accepts, it listens beyond loopback only with the token from its Secret.
func TestK8sManifest(t *testing.T) {
	data, err := os.ReadFile("../../deploy/k8s/console.yaml")
	require.NoError(t, err)
	var deploy struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Args []string `yaml:"args"`
						Env  []struct {
							Name      string `yaml:"name"`
							ValueFrom *struct {
								SecretKeyRef struct {
									Name string `yaml:"name"`
								} `yaml:"secretKeyRef"`
							} `yaml:"valueFrom"`
						} `yaml:"env"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	require.NoError(t, yaml.NewDecoder(bytes.NewReader(data)).Decode(&deploy))
	c := deploy.Spec.Template.Spec.Containers
	require.Len(t, c, 1)
	f, err := parseFlags(c[0].Args, io.Discard, testenv.LookupMap(nil))
	require.NoError(t, err)
	require.Equal(t, ":8081", f.listen)
	fromSecret := false
	for _, e := range c[0].Env {
		if e.Name == f.authTokenEnv && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef.Name == "botrelay-console" {
			fromSecret = true
		}
	}
	require.True(t, fromSecret, "the token comes from the botrelay-console Secret")

	// The workers' ConfigMap loads without any of the workers' secrets.
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	cmData, err := os.ReadFile("../../deploy/k8s/configmap.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(cmData, &cm))
	cfg, err := loadRobots(testenv.WriteFile(t, "robots.yaml", cm.Data["robots.yaml"]), testenv.LookupMap(nil))
	require.NoError(t, err)
	require.NotEmpty(t, cfg.Names())
}
