package reload_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/reload"
	"github.com/botrelay/botrelay/pkg/config"
)

const secretValue = "SECr3l0adS3cret"

func robot(name string, extra ...string) string {
	s := "  - name: " + name + "\n    platform: dingtalk\n    webhook: \"https://oapi.dingtalk.com/robot/send?access_token=" + name + "T0ken\"\n"
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s
}

func lookup(name string) (string, bool) {
	if name == "ROBOT_SECRET" {
		return secretValue, true
	}
	return "", false
}

type rig struct {
	r       *reload.Reloader
	reg     *prometheus.Registry
	logs    *bytes.Buffer
	mu      sync.Mutex
	applied []*config.Config
	refuse  error
	now     time.Time
}

func newRig(t *testing.T, start string) *rig {
	t.Helper()
	started, err := config.Parse([]byte(start), lookup)
	require.NoError(t, err)
	g := &rig{reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}, now: time.Unix(1000, 0)}
	g.r, err = reload.New(reload.Config{Path: "robots.yaml", Lookup: lookup, Registerer: g.reg,
		Logger: slog.New(slog.NewTextHandler(g.logs, nil)), Now: func() time.Time { return g.now },
		Apply: func(c *config.Config) error {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.refuse != nil {
				return g.refuse
			}
			g.applied = append(g.applied, c)
			return nil
		}}, started)
	require.NoError(t, err)
	return g
}

func (g *rig) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := g.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func change(content string) config.Change { return config.Change{Data: []byte(content)} }

func TestReloader(t *testing.T) {
	const start = "robots:\n"
	g := newRig(t, start+robot("a")+robot("b"))
	require.Equal(t, 1.0, g.metric(t, "botrelay_config_reload_ok"))
	require.Equal(t, 1000.0, g.metric(t, "botrelay_config_last_reload_success_timestamp_seconds"), "the start counts as a load")
	require.Equal(t, 0.0, g.metric(t, "botrelay_config_reloads_total"))

	// Added, changed (a secret from the environment), removed.
	g.now = time.Unix(2000, 0)
	d, err := g.r.Handle(change(start + robot("a", "secret_env: ROBOT_SECRET") + robot("c")))
	require.NoError(t, err)
	require.Equal(t, []string{"c"}, d.Added)
	require.Equal(t, []string{"a"}, d.Changed)
	require.Equal(t, []string{"b"}, d.Removed)
	require.Empty(t, d.Restart)
	require.Len(t, g.applied, 1)
	require.Equal(t, []string{"a", "c"}, g.applied[0].Names())
	require.Equal(t, secretValue, g.applied[0].Robots[0].Secret, "secrets are read before Apply")
	require.Equal(t, 1.0, g.metric(t, "botrelay_config_reloads_total"))
	require.Equal(t, 2000.0, g.metric(t, "botrelay_config_last_reload_success_timestamp_seconds"))
	require.Contains(t, g.logs.String(), `msg="configuration reloaded" file=robots.yaml why="file changed" robots=2 apps=0 added=c changed=a removed=b`)

	// A broken file: every problem logged, one line each; nothing applied.
	g.now = time.Unix(3000, 0)
	g.logs.Reset()
	broken := "concurrency: -1\nrobots:\n" + robot("a", "limit: 99") + robot("d", "secret_env: NOT_SET") + "  - name: e\n    platform: slack\n    webhook: https://x/y\n"
	_, err = g.r.Handle(change(broken))
	require.ErrorIs(t, err, config.ErrInvalid)
	require.Len(t, g.applied, 1)
	require.Equal(t, 1.0, g.metric(t, "botrelay_config_reload_failures_total"))
	require.Equal(t, 0.0, g.metric(t, "botrelay_config_reload_ok"))
	require.Equal(t, 1.0, g.metric(t, "botrelay_config_reloads_total"))
	require.Equal(t, 2000.0, g.metric(t, "botrelay_config_last_reload_success_timestamp_seconds"))
	logs := g.logs.String()
	for _, p := range []string{
		`problem="concurrency: must be positive, got -1"`,
		`problem="robots[0] \"a\": limit: 99 per 1m0s exceeds the dingtalk limit of 20 per 1m0s"`,
		`problem="robots[1] \"d\": secret_env: environment variable NOT_SET is not set"`,
		`problem="robots[2] \"e\": platform: not supported (want dingtalk, popo, feishu, wecom)"`,
	} {
		require.Contains(t, logs, p)
	}
	require.Equal(t, 4, strings.Count(logs, `msg="configuration problem"`), logs)
	require.Contains(t, logs, `msg="configuration reload failed: the running configuration stays" file=robots.yaml why="file changed" problems=4`)

	// The next good file is compared with the one applied last, not the broken one.
	d, err = g.r.Handle(change(start + robot("a", "secret_env: ROBOT_SECRET") + robot("c") + robot("f")))
	require.NoError(t, err)
	require.Equal(t, config.Diff{Added: []string{"f"}}, d)
	require.Equal(t, 1.0, g.metric(t, "botrelay_config_reload_ok"))
	require.Equal(t, 2.0, g.metric(t, "botrelay_config_reloads_total"))
	require.Equal(t, 1.0, g.metric(t, "botrelay_config_reload_failures_total"))

	// An unreadable file and a file Apply refuses are failures too.
	_, err = g.r.Handle(config.Change{Err: errors.New("config: open robots.yaml: permission denied"), Forced: true})
	require.Error(t, err)
	require.Contains(t, g.logs.String(), `why="reload requested"`)
	g.refuse = fmt.Errorf("worker: invalid config: robot %q configured twice", "x")
	_, err = g.r.Handle(change(start + robot("a")))
	require.ErrorIs(t, err, reload.ErrApply)
	require.Equal(t, 3.0, g.metric(t, "botrelay_config_reload_failures_total"))
	require.Equal(t, 0.0, g.metric(t, "botrelay_config_reload_ok"))
	require.Len(t, g.applied, 2)
	require.NotContains(t, g.logs.String(), secretValue)
	require.NotContains(t, g.logs.String(), "T0ken")
}

// TestReloaderRestartSettings: a setting read only at start is reported
// (log and gauge) on every reload while the file differs from what the
// process started with, and the robots of that file are applied.
func TestReloaderRestartSettings(t *testing.T) {
	const start = "prefix: p1\nrobots:\n"
	g := newRig(t, start+robot("a"))
	d, err := g.r.Handle(change("prefix: p2\nconcurrency: 4\nrobots:\n" + robot("a") + robot("b")))
	require.NoError(t, err)
	require.Equal(t, []string{"concurrency", "prefix"}, d.Restart)
	require.Equal(t, []string{"b"}, d.Added)
	require.Len(t, g.applied, 1, "the robots are applied")
	require.Equal(t, 1.0, g.metric(t, "botrelay_config_restart_required"))
	require.Contains(t, g.logs.String(), `msg="configuration changes that need a restart were not applied (the robots were)" file=robots.yaml settings="concurrency, prefix"`)

	// Still different from the start: still reported.
	d, err = g.r.Handle(change("prefix: p2\nrobots:\n" + robot("a")))
	require.NoError(t, err)
	require.Equal(t, []string{"prefix"}, d.Restart)
	require.Equal(t, []string{"b"}, d.Removed)
	// Back to the started value: cleared.
	d, err = g.r.Handle(change(start + robot("a")))
	require.NoError(t, err)
	require.Empty(t, d.Restart)
	require.Equal(t, 0.0, g.metric(t, "botrelay_config_restart_required"))
	require.Equal(t, 3.0, g.metric(t, "botrelay_config_reloads_total"))
}
