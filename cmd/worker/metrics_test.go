package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/testenv"
)

// TestMetricsListenSeparateAndProtected: with --metrics-listen the metrics
// move to their own address, the probes stay on --metrics-addr, and with
// --metrics-token-env /metrics answers only with the bearer token.
func TestMetricsListenSeparateAndProtected(t *testing.T) {
	const token = "m3tricsT0ken"
	natsURL := testenv.NATSURL(t)
	path := testenv.WriteFile(t, "robots.yaml", "robots:\n  - name: popo\n    platform: popo\n    webhook: https://example.com/hook/x\n")
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 2)
	done := make(chan error, 1)
	var stderr testenv.SyncBuffer
	go func() {
		done <- runEnv(ctx, []string{"--config", path, "--nats", natsURL, "--limiter", "memory",
			"--metrics-addr", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--metrics-token-env", "METRICS_TOKEN"},
			io.Discard, &stderr, cli.Env{Lookup: testenv.LookupMap(map[string]string{"METRICS_TOKEN": token}),
				Listening: func(a net.Addr) { addrs <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop")
		}
	})
	var probes, metrics string
	for _, dst := range []*string{&probes, &metrics} {
		select {
		case a := <-addrs:
			*dst = "http://" + a.String()
		case err := <-done:
			t.Fatalf("worker ended: %v\n%s", err, stderr.String())
		case <-time.After(10 * time.Second):
			t.Fatal("no listener after 10s")
		}
	}
	get := func(url, auth string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { code, _ := get(probes+"/healthz", ""); return code == http.StatusOK },
		"healthz on --metrics-addr")
	code, _ := get(probes+"/metrics", "Bearer "+token)
	require.Equal(t, http.StatusNotFound, code, "no metrics on the probes' address")
	code, _ = get(metrics+"/healthz", "")
	require.Equal(t, http.StatusNotFound, code, "no probes on the metrics address")
	code, _ = get(metrics+"/metrics", "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = get(metrics+"/metrics", "Bearer wrong")
	require.Equal(t, http.StatusUnauthorized, code)
	code, body := get(metrics+"/metrics", "Bearer "+token)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "botrelay_limiter_errors_total")
	require.NotContains(t, stderr.String(), token, "the token is never logged")
}

func TestMetricsFlagsErrors(t *testing.T) {
	_, err := parseFlags([]string{"--config", "c", "--metrics-addr", "", "--metrics-token-env", "X"}, io.Discard, testenv.LookupMap(nil))
	require.Equal(t, 2, cli.ExitCode(err))
	require.ErrorContains(t, err, "--metrics-token-env needs")

	path := testenv.WriteFile(t, "robots.yaml", "robots:\n  - name: popo\n    platform: popo\n    webhook: https://example.com/hook/x\n")
	err = runEnv(context.Background(), []string{"--config", path, "--metrics-addr", "127.0.0.1:0", "--metrics-token-env", "UNSET"},
		io.Discard, io.Discard, cli.Env{Lookup: testenv.LookupMap(nil)})
	require.ErrorContains(t, err, "environment variable UNSET is not set")
	require.False(t, strings.Contains(err.Error(), "connect"), "checked before connecting")
}
