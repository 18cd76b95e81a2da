package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
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
