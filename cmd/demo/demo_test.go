package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/deadletter"
)

// TestDemo runs the whole demo at a small scale and checks the facts it is
// meant to show.
func TestDemo(t *testing.T) {
	tmp := t.TempDir()
	var stdout, stderr bytes.Buffer
	sum, err := runDemo(context.Background(), options{window: 2 * time.Second, tmpParent: tmp}, &stdout, &stderr)
	out := stdout.String()
	require.NoError(t, err, "output:\n%s\nstderr:\n%s", out, stderr.String())
	require.NotNil(t, sum)

	// Everything settled, nothing lost, no breach but the deliberate one.
	require.Zero(t, sum.Lost, out)
	require.Zero(t, sum.UnexpectedBreaches, out)
	require.Equal(t, sum.Published, sum.Delivered+sum.DeadLettered, out)
	require.Equal(t, 3*dingLimit+8+8+legacyMessages+4+2+7+7+1, sum.Published, "the scenario's message count")
	for _, r := range sum.Robots {
		require.Equal(t, r.Published, r.Delivered+r.Dead(), "robot %s\n%s", r.Name, out)
	}

	robot := func(name string) *RobotSummary {
		r := sum.Robot(name)
		require.NotNil(t, r, name)
		return r
	}
	tests := []struct {
		name                 string
		published, delivered int
		// requests is every HTTP request the simulator received for the
		// robot: a repeat (dropped by DingTalk's msgUuid dedup, or kept by
		// POPO) would show here.
		requests int
		dead     map[deadletter.Reason]int
		breaches int
		check    func(t *testing.T, r *RobotSummary)
	}{
		// No request wasted: one per message delivered.
		{name: robotOps, published: 3 * dingLimit, delivered: 3 * dingLimit, requests: 3 * dingLimit, check: func(t *testing.T, r *RobotSummary) {
			require.GreaterOrEqual(t, r.Waited, 2, "a burst of 3 budgets waits for the limiter at least twice")
		}},
		// The message without the keyword costs no request.
		{name: robotAlerts, published: 8, delivered: 7, requests: 7, dead: map[deadletter.Reason]int{deadletter.ReasonMissingKeyword: 1}},
		// The throttled message is sent again, once.
		{name: robotLegacy, published: legacyMessages, delivered: legacyMessages, requests: legacyMessages + 1, breaches: 1,
			check: func(t *testing.T, r *RobotSummary) {
				require.Equal(t, 1, r.Throttled, "one throttle answered by one cool-off")
			}},
		// A permanent failure is not retried.
		{name: robotBadSig, published: 2, delivered: 0, requests: 2, dead: map[deadletter.Reason]int{deadletter.ReasonPermanent: 2}},
		// The malformed payload costs no request.
		{name: robotTeam, published: 8, delivered: 7, requests: 7, dead: map[deadletter.Reason]int{deadletter.ReasonDecode: 1}},
		{name: robotFlaky, published: 4, delivered: 4, requests: 4 + flakyFaults, check: func(t *testing.T, r *RobotSummary) {
			require.Equal(t, flakyFaults, r.Retried)
		}},
		// Feishu (signed in the body, keyword, two windows) and WeCom (no
		// signature): every message type, one request each.
		{name: robotFeishu, published: 7, delivered: 7, requests: 7},
		{name: robotWeCom, published: 7, delivered: 7, requests: 7},
		{name: robotGhost, published: 1, delivered: 0, requests: 0, dead: map[deadletter.Reason]int{deadletter.ReasonUnknownRobot: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := robot(tc.name)
			require.Equal(t, tc.published, r.Published, "published")
			require.Equal(t, tc.delivered, r.Delivered, "delivered")
			require.Equal(t, tc.requests, r.Requests, "requests")
			if tc.dead == nil {
				tc.dead = map[deadletter.Reason]int{}
			}
			require.Equal(t, tc.dead, r.DeadLettered, "dead letters")
			require.Equal(t, tc.breaches, r.Breaches, "breaches")
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}

	// The dead letters read back carry the platform's answer.
	var signFailures int
	for _, e := range sum.DeadLetters {
		if e.Record.Robot == robotBadSig {
			require.Equal(t, 310000, e.Record.ErrCode)
			require.Contains(t, e.Record.Detail, "sign not match")
			signFailures++
		}
	}
	require.Equal(t, 2, signFailures)

	// The narration and the report.
	for _, want := range []string{
		"rate-limited, waiting", "THROTTLED by the platform", "after the cool-off: nothing lost",
		"attempt 3 failed (HTTP 503)", "DEAD-LETTERED (missing_keyword)", "DEAD-LETTERED (unknown_robot)",
		"DEAD-LETTERED (decode)", "sign not match", "SUMMARY", "DEAD LETTERS",
		"go run ./cmd/producer dlq replay", "OK: nothing lost", "/open-apis/robots/v1/hook/REDACTED",
	} {
		require.Contains(t, out, want)
	}

	// Secrets and tokens are never printed.
	require.NotEmpty(t, sum.secrets)
	for _, s := range sum.secrets {
		require.NotContains(t, out, s)
		require.NotContains(t, stderr.String(), s)
	}

	// The JetStream store is removed.
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, entries)
}

func TestRunQuiet(t *testing.T) {
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"-window", "1s", "-quiet"}, &stdout, io.Discard)
	out := stdout.String()
	require.NoError(t, err, out)
	require.Contains(t, out, "SUMMARY")
	require.Contains(t, out, "OK: nothing lost")
	require.NotContains(t, out, "fan-out:", "no narration when quiet")
	require.NotContains(t, out, "first message delivered")
}

func TestRunTimesOut(t *testing.T) {
	tmp := t.TempDir()
	start := time.Now()
	_, err := runDemo(context.Background(), options{window: 2 * time.Second, timeout: time.Second, quiet: true, tmpParent: tmp},
		io.Discard, io.Discard)
	require.ErrorContains(t, err, "not settled")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 20*time.Second)
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, entries, "the JetStream store is removed on failure too")
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    options
		wantErr string
	}{
		{name: "defaults", want: options{window: 6 * time.Second}},
		{name: "all", args: []string{"-window", "2s", "-quiet", "-verbose", "-timeout", "1m"},
			want: options{window: 2 * time.Second, quiet: true, verbose: true, timeout: time.Minute}},
		{name: "window too small", args: []string{"-window", "500ms"}, wantErr: "at least 1s"},
		{name: "negative timeout", args: []string{"-timeout", "-1s"}, wantErr: "must not be negative"},
		{name: "stray argument", args: []string{"now"}, wantErr: "unexpected arguments"},
		{name: "unknown flag", args: []string{"-fast"}, wantErr: "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestRunHelp(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-h"}, io.Discard, &stderr)
	require.ErrorIs(t, err, flag.ErrHelp)
	require.Contains(t, stderr.String(), "-window")
}

func TestSummaryCheck(t *testing.T) {
	ok := func() RobotSummary {
		return RobotSummary{Name: "a", Configured: true, Published: 3, Delivered: 2,
			DeadLettered: map[deadletter.Reason]int{deadletter.ReasonPermanent: 1}}
	}
	tests := []struct {
		name    string
		mod     func(r *RobotSummary)
		wantErr string
	}{
		{name: "settled", mod: func(*RobotSummary) {}},
		{name: "lost", mod: func(r *RobotSummary) { r.Delivered = 1 }, wantErr: "published 3, but delivered 1 + dead-lettered 1 = 2"},
		{name: "delivered twice", mod: func(r *RobotSummary) { r.Delivered = 3 }, wantErr: "= 4"},
		{name: "breach", mod: func(r *RobotSummary) { r.Breaches = 1 }, wantErr: "1 limit breach"},
		{name: "deliberate breach", mod: func(r *RobotSummary) { r.Breaches, r.DeliberateBreach = 1, true }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ok()
			tc.mod(&r)
			s := &Summary{Robots: []RobotSummary{r}}
			err := s.check()
			var buf bytes.Buffer
			s.print(&buf, newTiming(6*time.Second))
			if tc.wantErr == "" {
				require.NoError(t, err)
				require.Contains(t, buf.String(), "OK: nothing lost")
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
			require.True(t, strings.Contains(buf.String(), "FAILED: "), buf.String())
		})
	}
}

func TestNewTiming(t *testing.T) {
	for _, w := range []time.Duration{time.Second, 2 * time.Second, 6 * time.Second, time.Minute} {
		tm := newTiming(w)
		require.Less(t, tm.Ban, tm.Window, "window %s", w)
		require.Greater(t, tm.CoolOff, tm.Ban, "the cool-off outlasts the ban (window %s)", w)
		require.Positive(t, tm.Margin)
	}
}
