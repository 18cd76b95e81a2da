package worker

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
)

// A reload that removes a robot deletes its series: a fleet changed by
// reloads keeps no series per robot it once had. The robots kept keep
// theirs.
func TestReloadForgetsRemovedRobotsSeries(t *testing.T) {
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	snd, err := delivery.New()
	require.NoError(t, err)
	robot := func(name string) Robot {
		return Robot{Robot: delivery.Robot{Name: name, Platform: "dingtalk", Webhook: "https://example.invalid/" + name},
			Limit: limiter.Limit{Max: 20, Window: time.Minute}}
	}
	reg := prometheus.NewRegistry()
	w, err := New(js, Config{Robots: []Robot{robot("keep"), robot("gone")}, Sender: snd,
		Limiter: limiter.NewMemory(nil), Ledger: ledger.NewMemory(), Metrics: NewMetrics(reg)})
	require.NoError(t, err)
	for _, name := range []string{"keep", "gone"} {
		w.m.deliveries.WithLabelValues(name, "success").Inc()
		w.m.latency.WithLabelValues(name).Observe(0.1)
		w.m.backlog.WithLabelValues(name).Set(3)
		w.m.coolOffs.WithLabelValues(name).Inc()
	}
	require.Equal(t, map[string]int{"keep": 4, "gone": 4}, seriesByRobot(t, reg))

	require.NoError(t, w.Reload([]Robot{robot("keep")}))
	require.Equal(t, map[string]int{"keep": 4}, seriesByRobot(t, reg))
}

// seriesByRobot counts the gathered series per robot label.
func seriesByRobot(t *testing.T, reg *prometheus.Registry) map[string]int {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]int{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "robot" {
					out[l.GetValue()]++
				}
			}
		}
	}
	return out
}
