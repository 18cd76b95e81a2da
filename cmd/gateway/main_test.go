package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
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
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/stream"
)

// Credentials used by the tests: never in any output.
const (
	token1  = "gwTokenOneS3cret"
	token2  = "gwTokenTwoS3cret"
	webhook = "https://oapi.dingtalk.com/robot/send?access_token=dtTokenS3cret"
	secret  = "SECdingS3cret"
)

// gatewayProc is a gateway started by startRun.
type gatewayProc struct {
	base   string // http://host:port
	stderr *testenv.SyncBuffer
	cancel context.CancelFunc
	done   chan error
	hup    chan os.Signal // what SIGHUP sends
}

// startRun runs the command with args until the test ends (or stop).
func startRun(t *testing.T, args []string, vars map[string]string) *gatewayProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	p := &gatewayProc{stderr: &testenv.SyncBuffer{}, cancel: cancel, done: make(chan error, 1), hup: make(chan os.Signal, 1)}
	go func() {
		p.done <- runEnv(ctx, args, io.Discard, p.stderr, cli.Env{Lookup: testenv.LookupMap(vars), Listening: func(a net.Addr) { addr <- a }}, p.hup)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			t.Error("gateway did not stop")
		}
	})
	select {
	case a := <-addr:
		p.base = "http://" + a.String()
	case err := <-p.done:
		t.Fatalf("gateway exited at start: %v\n%s", err, p.stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("gateway did not start listening")
	}
	return p
}

// stop cancels the run and returns its result.
func (p *gatewayProc) stop(t *testing.T) error {
	t.Helper()
	p.cancel()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("gateway did not stop")
		return nil
	}
}

func (p *gatewayProc) request(t *testing.T, method, path, body, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, p.base+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestRun(t *testing.T) {
	url := testenv.NATSURL(t)
	_, js := testenv.Connect(t, url)
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(context.Background(), js))

	p := startRun(t, []string{"--listen", "127.0.0.1:0", "--prefix", topo.Prefix, "--token-env", "GW_TOKENS",
		"--robots", "ops, dev", "--log-format", "json"},
		map[string]string{cli.EnvNATSURL: url, "GW_TOKENS": token1 + ", " + token2})

	status, body := p.request(t, http.MethodPost, "/v1/messages", `{"robot":"ops","text":"disk full on db-3","id":"run-1"}`, token2)
	require.Equal(t, http.StatusAccepted, status, body)
	require.JSONEq(t, `{"id":"run-1","robot":"ops","sequence":1,"duplicate":false}`, body)
	s, err := js.Stream(context.Background(), topo.OutStream())
	require.NoError(t, err)
	m, err := s.GetLastMsgForSubject(context.Background(), topo.OutSubject("ops"))
	require.NoError(t, err)
	env, err := envelope.Decode(m.Data)
	require.NoError(t, err)
	require.Equal(t, "disk full on db-3", env.Message.Text.Content)

	status, _ = p.request(t, http.MethodPost, "/v1/messages", `{"robot":"ops","text":"x"}`, "")
	require.Equal(t, http.StatusUnauthorized, status)
	status, body = p.request(t, http.MethodPost, "/v1/messages", `{"robot":"sre","text":"x"}`, token1)
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Contains(t, body, `unknown robot \"sre\": not a robot this gateway accepts`)
	status, _ = p.request(t, http.MethodGet, "/readyz", "", "")
	require.Equal(t, http.StatusOK, status)

	require.NoError(t, p.stop(t), "a cancelled run exits cleanly")
	logs := p.stderr.String()
	require.Contains(t, logs, `"msg":"serving"`)
	require.Contains(t, logs, `"msg":"message accepted"`)
	require.Contains(t, logs, `"msg":"stopped"`)
	require.NotContains(t, logs, "S3cret")
	require.NotContains(t, logs, "disk full", "bodies are not logged")
}

func TestRunConfigAllowList(t *testing.T) {
	url := testenv.NATSURL(t)
	_, js := testenv.Connect(t, url)
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(context.Background(), js))
	// The gateway has neither the webhooks nor the secrets: it needs the
	// names, and takes the prefix from the file.
	cfg := testenv.WriteFile(t, "robots.yaml", `prefix: `+topo.Prefix+`
robots:
  - name: ops-alerts
    platform: dingtalk
    webhook: "${OPS_WEBHOOK}"
    secret_env: OPS_SECRET
  - name: deploys
    platform: popo
    webhook: "${DEPLOY_WEBHOOK}"
`)
	p := startRun(t, []string{"--listen", "127.0.0.1:0", "--config", cfg, "--no-auth"}, map[string]string{cli.EnvNATSURL: url})
	status, body := p.request(t, http.MethodPost, "/v1/fanout", `{"robots":["ops-alerts","deploys"],"text":"hi","id":"f-1"}`, "")
	require.Equal(t, http.StatusAccepted, status, body)
	require.Contains(t, body, `"id":"f-1.deploys"`)
	status, body = p.request(t, http.MethodPost, "/v1/messages", `{"robot":"ops","text":"hi"}`, "")
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Contains(t, body, "not a robot this gateway accepts")
	require.NotContains(t, body, "deploys", "the allow-list is not echoed")
	require.NoError(t, p.stop(t))
	require.Contains(t, p.stderr.String(), "without authentication", "running without tokens is flagged")
}

func TestAllowListFromExampleConfig(t *testing.T) {
	// The repository's example, with none of its variables set, and with
	// them set: the names are the same, and no secret is needed.
	for _, vars := range []map[string]string{nil, {"DINGTALK_OPS_WEBHOOK": webhook, "DINGTALK_OPS_SECRET": secret}} {
		acc, err := allowList(flags{configPath: "../../examples/robots.yaml"}, testenv.LookupMap(vars))
		require.NotNil(t, acc.size, "size rules from the file")
		require.NoError(t, err)
		require.Empty(t, acc.apps)
		require.NotEmpty(t, acc.robots)
		require.Equal(t, stream.DefaultPrefix, acc.prefix)
		require.NotContains(t, strings.Join(acc.robots, ","), "S3cret")
	}
}

func TestRunNATSDownAtStart(t *testing.T) {
	dead := "nats://" + testenv.ClosedAddr(t)

	p := startRun(t, []string{"--listen", "127.0.0.1:0", "--nats", dead, "--no-auth"}, nil)
	status, _ := p.request(t, http.MethodGet, "/healthz", "", "")
	require.Equal(t, http.StatusOK, status)
	status, _ = p.request(t, http.MethodGet, "/readyz", "", "")
	require.Equal(t, http.StatusServiceUnavailable, status, "not ready without NATS")
	require.NoError(t, p.stop(t))
	require.Contains(t, p.stderr.String(), "NATS not reachable yet")
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		vars map[string]string
		code int
		want string
	}{
		{name: "help", args: []string{"-h"}, code: 0},
		{name: "stray argument", args: []string{"extra"}, code: 2, want: "unexpected arguments"},
		{name: "no tokens", args: nil, code: 2, want: "no tokens: give --tokens-file or --token-env, or --no-auth"},
		{name: "no-auth with tokens", args: []string{"--no-auth", "--token-env", "GW_TOKENS"}, code: 2, want: "choose one"},
		{name: "tls cert without key", args: []string{"--tls-cert", "c.pem", "--no-auth"}, code: 2, want: "--tls-cert and --tls-key go together"},
		{name: "missing tokens file", args: []string{"--tokens-file", "/nonexistent/tokens.yaml"}, code: 1, want: "--tokens-file"},
		{name: "unknown flag", args: []string{"--bogus"}, code: 2, want: "bogus"},
		{name: "robots and config", args: []string{"--robots", "a", "--config", "c.yaml"}, code: 2, want: "give one"},
		{name: "bad max body", args: []string{"--max-body", "0"}, code: 2, want: "--max-body must be positive"},
		{name: "bad log format", args: []string{"--log-format", "xml"}, code: 2, want: "--log-format"},
		{name: "bad prefix", args: []string{"--prefix", "a.b", "--no-auth"}, code: 2, want: "--prefix"},
		{name: "bad prefix from env", args: []string{"--no-auth"}, vars: map[string]string{cli.EnvPrefix: "a b"}, code: 2, want: "--prefix"},
		{name: "token env unset", args: []string{"--token-env", "GW_TOKENS"}, code: 1, want: "GW_TOKENS is not set"},
		{name: "token env empty", args: []string{"--token-env", "GW_TOKENS"}, vars: map[string]string{"GW_TOKENS": " , "}, code: 1,
			want: "holds no token"},
		{name: "missing config", args: []string{"--config", "/nonexistent/robots.yaml", "--no-auth"}, code: 1, want: "--config"},
		{name: "bad robot name", args: []string{"--robots", "ops,a.b", "--nats", "nats://127.0.0.1:1", "--no-auth"}, code: 1, want: `Robots[1] "a.b"`},
		{name: "listen in use", args: []string{"--listen", "256.0.0.1:1", "--nats", "nats://127.0.0.1:1", "--no-auth"}, code: 1, want: "listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := runEnv(ctx, tt.args, io.Discard, io.Discard, cli.Env{Lookup: testenv.LookupMap(tt.vars)}, nil)
			require.Equal(t, tt.code, cli.ExitCode(err), "err %v", err)
			if tt.code == 0 {
				require.True(t, err == nil || errors.Is(err, flag.ErrHelp))
				return
			}
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), "S3cret")
		})
	}
}

func TestPrefixPrecedence(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		vars    map[string]string
		want    string
		wantSet bool
	}{
		{name: "default", want: stream.DefaultPrefix},
		{name: "environment", vars: map[string]string{cli.EnvPrefix: "staging"}, want: "staging", wantSet: true},
		{name: "flag over environment", args: []string{"--prefix", "dev"}, vars: map[string]string{cli.EnvPrefix: "staging"}, want: "dev", wantSet: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parseFlags(tt.args, io.Discard, testenv.LookupMap(tt.vars))
			require.NoError(t, err)
			require.Equal(t, tt.want, f.prefix)
			require.Equal(t, tt.wantSet, f.prefixSet, "a set prefix wins over the config file's")
		})
	}
}

// The Kubernetes gateway manifest runs this command with flags it accepts,
// the token variable its Secret provides, and the workers' ConfigMap.
func TestK8sManifest(t *testing.T) {
	data, err := os.ReadFile("../../deploy/k8s/gateway.yaml")
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
	require.NoError(t, yaml.NewDecoder(bytes.NewReader(data)).Decode(&deploy)) // the first document
	c := deploy.Spec.Template.Spec.Containers
	require.Len(t, c, 1)
	f, err := parseFlags(c[0].Args, io.Discard, testenv.LookupMap(nil))
	require.NoError(t, err)
	require.Equal(t, "/etc/botrelay/robots.yaml", f.configPath)
	fromSecret := false
	for _, e := range c[0].Env {
		if e.Name == f.tokenEnv && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef.Name == "botrelay-gateway" {
			fromSecret = true
		}
	}
	require.True(t, fromSecret, "the token variable %s comes from the botrelay-gateway Secret", f.tokenEnv)

	// The ConfigMap the gateway mounts yields the robot names, without the
	// workers' webhooks and secrets.
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	cmData, err := os.ReadFile("../../deploy/k8s/configmap.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(cmData, &cm))
	f.configPath = testenv.WriteFile(t, "robots.yaml", cm.Data["robots.yaml"])
	acc, err := allowList(f, testenv.LookupMap(nil))
	require.NoError(t, err)
	require.NotEmpty(t, acc.robots)
}

// Unset variables get placeholders that pass the workers' validation (a
// credential per webhook, one robot per credential), whether a variable
// holds a whole webhook or only its token.
func TestAllowListPlaceholders(t *testing.T) {
	path := testenv.WriteFile(t, "robots.yaml", `robots:
  - {name: a, platform: dingtalk, webhook: "${A_WEBHOOK}", secret_env: A_SECRET}
  - {name: b, platform: popo, webhook: "${B_WEBHOOK}"}
  - {name: c, platform: dingtalk, webhook: "https://oapi.dingtalk.com/robot/send?access_token=${C_TOKEN}"}
  - {name: d, platform: popo, webhook: "https://open.popo.netease.com/open-apis/robots/v1/hook/${D_HOOK}"}
`)
	acc, err := allowList(flags{configPath: path}, testenv.LookupMap(nil))
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c", "d"}, acc.robots)
}
