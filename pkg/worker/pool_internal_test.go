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

// The member choice: the earliest next slot, ties in turn from the cursor,
// members out of rotation (-1) never.
func TestEarliest(t *testing.T) {
	tests := []struct {
		name  string
		slots []time.Duration
		from  int
		want  int
	}{
		{name: "all free, from the first", slots: []time.Duration{0, 0, 0}, from: 0, want: 0},
		{name: "all free, in turn", slots: []time.Duration{0, 0, 0}, from: 1, want: 1},
		{name: "all free, going round", slots: []time.Duration{0, 0, 0}, from: 2, want: 2},
		{name: "earliest wins over the turn", slots: []time.Duration{3 * time.Second, time.Second, 2 * time.Second}, from: 0, want: 1},
		{name: "a cooling member is skipped", slots: []time.Duration{10 * time.Minute, 0, 0}, from: 0, want: 1},
		{name: "out of rotation is skipped", slots: []time.Duration{-1, 5 * time.Second, -1}, from: 0, want: 1},
		{name: "out of rotation skipped even at the turn", slots: []time.Duration{0, -1, 0}, from: 1, want: 2},
		{name: "equal slots after the cursor", slots: []time.Duration{time.Second, time.Second, time.Second}, from: 2, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, earliest(tt.slots, tt.from))
		})
	}
}

// A reload checks the new pools before switching, and rebuilds them: new
// members join the rotation, and members taken out are back.
func TestReloadRebuildsPools(t *testing.T) {
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	snd, err := delivery.New()
	require.NoError(t, err)
	robot := func(name string) Robot {
		return Robot{Robot: delivery.Robot{Name: name, Platform: "dingtalk", Webhook: "https://example.invalid/" + name},
			Limit: limiter.Limit{Max: 20, Window: time.Minute}}
	}
	pool := func(members ...string) Robot {
		return Robot{Robot: delivery.Robot{Name: "p", Platform: "dingtalk"}, Pool: members}
	}
	reg := prometheus.NewRegistry()
	w, err := New(js, Config{Robots: []Robot{robot("a"), robot("b"), robot("c"), pool("a", "b")},
		Sender: snd, Limiter: limiter.NewMemory(nil), Ledger: ledger.NewMemory(), Metrics: NewMetrics(reg)})
	require.NoError(t, err)
	w.takeOut(w.pools["p"], w.robots["a"], delivery.Result{Outcome: delivery.Permanent, Reason: "robot disabled"})
	in, _ := w.inRotation(w.pools["p"], time.Now())
	require.Equal(t, []int{1}, in)
	require.Equal(t, map[string]float64{"a": 0, "b": 1}, poolGauge(t, reg, "p"))

	require.NoError(t, w.Reload([]Robot{robot("a"), robot("b"), robot("c"), pool("a", "b", "c")}))
	in, _ = w.inRotation(w.pools["p"], time.Now())
	require.Equal(t, []int{0, 1, 2}, in, "c joined, a is back")
	require.Equal(t, []string{"a", "b", "c"}, memberNames(w.pools["p"]))
	require.Same(t, w.robots["a"], w.pools["p"].members[0], "members are the worker's robots")
	require.Equal(t, map[string]float64{"a": 1, "b": 1, "c": 1}, poolGauge(t, reg, "p"))

	err = w.Reload([]Robot{robot("a"), robot("b"), robot("c"), pool("a", "x")})
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.ErrorContains(t, err, `member "x" is not a configured robot`)
	require.Equal(t, []string{"a", "b", "c"}, memberNames(w.pools["p"]), "a broken reload changes nothing")
}

func memberNames(p *pool) []string {
	var out []string
	for _, m := range p.members {
		out = append(out, m.Name)
	}
	return out
}

// poolGauge returns botrelay_pool_member_state of pool by member.
func poolGauge(t *testing.T, reg *prometheus.Registry, pool string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "botrelay_pool_member_state" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["pool"] == pool {
				out[labels["robot"]] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}
