package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/signer"
	"github.com/stretchr/testify/require"
)

func TestParseRobot(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    robotsim.Robot
		wantErr string
	}{
		{name: "token only", in: "tok", want: robotsim.Robot{Platform: "popo", Token: "tok"}},
		{name: "secret", in: "tok:sec", want: robotsim.Robot{Platform: "popo", Token: "tok", Secret: "sec"}},
		{name: "keywords", in: "tok:sec:a, b,", want: robotsim.Robot{Platform: "popo", Token: "tok", Secret: "sec",
			Keywords: []string{"a", "b"}}},
		{name: "limit without secret", in: "tok:::5", want: robotsim.Robot{Platform: "popo", Token: "tok", Limit: 5}},
		{name: "empty token", in: ":sec", wantErr: "empty token"},
		{name: "too many parts", in: "a:b:c:1:e", wantErr: "too many"},
		{name: "bad limit", in: "a:b:c:x", wantErr: "limit"},
		{name: "negative limit", in: "a:b:c:-1", wantErr: "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRobot("popo", tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), ":b:") // the secret is not echoed
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestRunBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "bad robot", args: []string{"-dingtalk", ":SECx"}},
		{name: "bad second robot", args: []string{"-popo", "ok", "-popo", "a:SECx:k:z"}},
		{name: "stray argument", args: []string{"extra"}},
		{name: "bad duration", args: []string{"-window", "soon"}},
		{name: "bad address", args: []string{"-addr", "256.0.0.1:x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			err := run(context.Background(), tt.args, io.Discard, &stderr)
			require.Error(t, err)
			require.NotContains(t, err.Error()+stderr.String(), "SECx")
		})
	}
}

func TestRunServesRobots(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-window", "1s", "-ban", "2s",
			"-dingtalk", "dt-tok:SECx:alert", "-popo", "hook:s::1"}, pw, io.Discard)
		_ = pw.Close()
	}()

	lines := bufio.NewScanner(pr)
	var out []string
	for len(out) < 4 && lines.Scan() {
		out = append(out, lines.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	require.Len(t, out, 4)
	require.Contains(t, out[0], "robotsim listening on http://127.0.0.1:")
	require.NotContains(t, strings.Join(out, "\n"), "SECx")

	dtURL := strings.Fields(out[1])[1]
	require.Contains(t, dtURL, "/robot/send?access_token=dt-tok")
	require.Contains(t, out[1], "signed, keywords alert")
	require.Contains(t, out[2], "/open-apis/robots/v1/hook/hook")
	require.Contains(t, out[2], "limit 1")

	signed, err := signer.SignDingTalkURL(dtURL, "SECx", time.Now())
	require.NoError(t, err)
	resp, err := http.Post(signed, "application/json", strings.NewReader(`{"msgtype":"text","text":{"content":"alert"}}`))
	require.NoError(t, err)
	var a struct {
		ErrCode int `json:"errcode"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	require.NoError(t, resp.Body.Close())
	require.Equal(t, 0, a.ErrCode)

	cancel()
	require.NoError(t, <-done)
}

// -config serves every robot of a worker configuration file; -count-only
// keeps counters, served at /_sim/stats.
func TestRunServesConfigFile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	base := "http://" + addr
	var cfg strings.Builder
	cfg.WriteString("robots:\n")
	for i := range 25 {
		fmt.Fprintf(&cfg, "  - {name: r%d, platform: popo, webhook: %q, secret_env: POPO_SECRET}\n", i,
			robotsim.WebhookURL(base, robotsim.PlatformPOPO, fmt.Sprintf("h%d", i)))
	}
	file := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(file, []byte(cfg.String()), 0o600))
	t.Setenv("POPO_SECRET", "SECpopo")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuf
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", addr, "-config", file, "-count-only"}, &out, io.Discard) }()
	var a struct {
		ErrCode int `json:"errcode"`
	}
	post := func(id string) int {
		ts, sign := signer.POPO("SECpopo", time.Now())
		body := fmt.Sprintf(`{"message":"hi","timestamp":%q,"signData":%q}`, ts, sign)
		resp, err := http.Post(robotsim.WebhookURL(base, robotsim.PlatformPOPO, id), "application/json", strings.NewReader(body))
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
		return a.ErrCode
	}
	deadline := time.Now().Add(10 * time.Second)
	for post("h24") == -1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, 0, a.ErrCode)
	require.Equal(t, 0, post("h0"))
	require.Equal(t, robotsim.POPOErrRobotNotFound, post("h25"))

	resp, err := http.Get(base + "/_sim/stats")
	require.NoError(t, err)
	var tot robotsim.Totals
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tot))
	require.NoError(t, resp.Body.Close())
	require.Equal(t, 25, tot.Robots)
	require.Equal(t, 2, tot.Active)
	require.Equal(t, robotsim.Stats{Requests: 2, Accepted: 2, RepeatedContent: 0}, tot.Stats)
	cancel()
	require.NoError(t, <-done)
	require.Contains(t, out.String(), "25 robots (not listed)")
	require.NotContains(t, out.String(), "SECpopo")

	require.ErrorContains(t, run(context.Background(), []string{"-config", filepath.Join(t.TempDir(), "none.yaml")}, io.Discard, io.Discard), "-config")
}

// syncBuf is a strings.Builder safe for a writer and a reader goroutine.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
