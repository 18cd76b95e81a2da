package benchscale

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/robotsim/simconfig"
)

// The fleet's file is a valid worker configuration, and the simulator
// reads from it exactly the robots the benchmark addresses.
func TestFleetConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fleet Fleet
		limit map[string]int
	}{
		{"mixed, platform limits", Fleet{Robots: 4, Mix: true}, map[string]int{"dingtalk": 20, "popo": 60}},
		{"popo only", Fleet{Robots: 3}, map[string]int{"popo": 60}},
		{"lifted, with an extra robot", Fleet{Robots: 2, Mix: true, Lifted: true,
			Extra: []robotsim.Robot{{Platform: robotsim.PlatformPOPO, Token: "bare"}}},
			map[string]int{"dingtalk": LiftedLimit, "popo": LiftedLimit}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fleet
			f.Prefix, f.SimURL = "bsx", "http://127.0.0.1:1234"
			var b bytes.Buffer
			require.NoError(t, f.WriteConfig(&b))
			c, err := config.Parse(b.Bytes(), func(string) (string, bool) { return "", false })
			require.NoError(t, err)
			require.Equal(t, "bsx", c.Prefix)
			require.Len(t, c.Robots, f.Robots+len(f.Extra))
			robots, err := simconfig.FromConfig(c)
			require.NoError(t, err)
			for i := range f.Robots {
				name, want := f.Robot(i)
				require.Equal(t, name, c.Robots[i].Name)
				want.Limit, want.Window = tc.limit[want.Platform], time.Minute
				require.Equal(t, want, robots[i])
				if f.Mix && i%2 == 0 {
					require.Equal(t, robotsim.PlatformDingTalk, want.Platform)
				} else {
					require.Equal(t, robotsim.PlatformPOPO, want.Platform)
				}
			}
			for j, x := range f.Extra {
				got := robots[f.Robots+j]
				require.Equal(t, x.Token, got.Token)
				require.Equal(t, tc.limit["popo"], got.Limit)
			}
			if f.Lifted {
				require.Equal(t, config.Duration(LiftedMargin), c.Platforms["popo"].Margin)
			}
		})
	}
}

func TestParseStatCPU(t *testing.T) {
	// utime 1234, stime 766 ticks: 20s. The name holds spaces and ')'.
	line := "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 766 0 0 20 0 9 0 123 456 789"
	got, err := ParseStatCPU(line)
	require.NoError(t, err)
	require.Equal(t, 20*time.Second, got)
	_, err = ParseStatCPU("4242 no name")
	require.ErrorIs(t, err, ErrProc)
	_, err = ParseStatCPU("1 (x) S 1 2")
	require.ErrorIs(t, err, ErrProc)
	_, err = ParseStatCPU("1 (x) S 1 1 1 0 -1 0 0 0 0 0 u 1")
	require.ErrorIs(t, err, ErrProc)
}

func TestParseStatusRSS(t *testing.T) {
	got, err := ParseStatusRSS("Name:\tworker\nVmPeak:\t 9000 kB\nVmRSS:\t   51200 kB\nThreads: 9\n")
	require.NoError(t, err)
	require.Equal(t, int64(50<<20), got)
	_, err = ParseStatusRSS("Name: x\n")
	require.ErrorIs(t, err, ErrProc)
	_, err = ParseStatusRSS("VmRSS: 12 MB\n")
	require.ErrorIs(t, err, ErrProc)
}

// The readings of this very process are plausible.
func TestReadOwnProcess(t *testing.T) {
	busy := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(busy) {
	}
	cpu, err := ReadCPU(os.Getpid())
	require.NoError(t, err)
	require.Positive(t, cpu)
	rss, err := ReadRSS(os.Getpid())
	require.NoError(t, err)
	require.Greater(t, rss, int64(1<<20))
	_, err = ReadCPU(-1)
	require.ErrorIs(t, err, ErrProc)
}

func TestParseVarz(t *testing.T) {
	v, err := ParseVarz([]byte(`{"server_id":"x","in_msgs":120,"out_msgs":80,"connections":4,"mem":1}`))
	require.NoError(t, err)
	require.Equal(t, Varz{InMsgs: 120, OutMsgs: 80, Connections: 4}, v)
	require.Equal(t, int64(200), v.Msgs())
	_, err = ParseVarz([]byte("<html>"))
	require.Error(t, err)
}

func TestQuotaUsed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		accepted int
		limit    int
		span     time.Duration
		want     float64
	}{
		{"all of two minutes", 120, 60, 2 * time.Minute, 1},
		{"95 percent", 114, 60, 2 * time.Minute, 0.95},
		{"more than the quota is capped", 130, 60, 2 * time.Minute, 1},
		{"nothing", 0, 60, 2 * time.Minute, 0},
		{"no quota", 5, 0, time.Minute, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.InDelta(t, tc.want, QuotaUsed(tc.accepted, tc.limit, tc.span, time.Minute), 1e-9)
		})
	}
	require.InDelta(t, 0.25, CPUShare(250*time.Millisecond, time.Second), 1e-9)
	require.Zero(t, CPUShare(time.Second, 0))
}

func TestReport(t *testing.T) {
	var r Report
	r.Add("idle", "msgs/s", "12", "≤ 100", true)
	r.Add("idle", "a|b", "300", "≤ 100", false)
	r.Info("idle", "context", "x")
	require.Equal(t, 1, r.Failed())
	var b strings.Builder
	r.Print(&b)
	out := b.String()
	require.Contains(t, out, "| idle | a\\|b | 300 | ≤ 100 | MISSED |")
	require.Contains(t, out, "| idle | msgs/s | 12 | ≤ 100 | ok |")
	require.Contains(t, out, "| idle | context | x |  |  |")
	require.Contains(t, out, "1 of 2 targets missed")
}

func TestText(t *testing.T) {
	require.Equal(t, "r000001 msg 000007 ", text("r000001", 7, 0))
	require.Len(t, text("r000001", 7, 1024), 1024)
	require.True(t, strings.HasPrefix(text("r000001", 7, 1024), "r000001 msg 000007 x"))
}

func TestRunUnknownScenario(t *testing.T) {
	err := Run(context.Background(), Options{Scenarios: []string{"idle", "nope"}, Dir: t.TempDir()}, &Report{})
	require.ErrorContains(t, err, `unknown scenario "nope"`)
}
