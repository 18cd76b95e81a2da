package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/reload"
	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/worker"
)

// recorder is a real registry that also remembers the names of the
// metrics registered with it.
type recorder struct {
	*prometheus.Registry
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return r.Registry.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// workerMetricNames are the series names the worker exports: its metrics'
// names, with a histogram's _bucket, _sum and _count.
func workerMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	rec := &recorder{Registry: prometheus.NewRegistry(), names: map[string]bool{}}
	worker.NewMetrics(rec)
	_, err := reload.New(reload.Config{Apply: func(*config.Config) error { return nil }, Registerer: rec}, &config.Config{})
	require.NoError(t, err)
	names := map[string]bool{}
	for n := range rec.names {
		names[n] = true
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			names[n+s] = true
		}
	}
	require.Contains(t, names, "botrelay_delivery_attempts_total")
	return names
}

var botrelayMetric = regexp.MustCompile(`\bbotrelay_[a-z_]+\b`)

// TestDashboardQueriesNameWorkerMetrics: each panel of the Grafana
// dashboard queries at least one metric, and every botrelay_ metric it
// names is one the worker's registry has.
func TestDashboardQueriesNameWorkerMetrics(t *testing.T) {
	names := workerMetricNames(t)
	data, err := os.ReadFile("../../deploy/grafana/botrelay-dashboard.json")
	require.NoError(t, err)
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query string `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	require.NoError(t, json.Unmarshal(data, &d))
	require.NotEmpty(t, d.Panels)
	for _, p := range d.Panels {
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			used := botrelayMetric.FindAllString(tg.Expr, -1)
			require.NotEmpty(t, used, "panel %q: %s names no botrelay metric", p.Title, tg.Expr)
			for _, m := range used {
				require.True(t, names[m], "panel %q queries %s, which the worker does not export", p.Title, m)
			}
		}
	}
	for _, v := range d.Templating.List {
		for _, m := range botrelayMetric.FindAllString(v.Query, -1) {
			require.True(t, names[m], "variable query names %s, which the worker does not export", m)
		}
	}
}

// TestAlertRulesNameWorkerMetrics: every botrelay_ metric an alert or the
// autoscaler queries is exported by the worker.
func TestAlertRulesNameWorkerMetrics(t *testing.T) {
	names := workerMetricNames(t)
	var rule struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert string `yaml:"alert"`
					Expr  string `yaml:"expr"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		} `yaml:"spec"`
	}
	readYAML(t, "../../deploy/k8s/ops/prometheusrule.yaml", &rule)
	var so struct {
		Spec struct {
			Triggers []struct {
				Metadata map[string]string `yaml:"metadata"`
			} `yaml:"triggers"`
		} `yaml:"spec"`
	}
	readYAML(t, "../../deploy/k8s/ops/scaledobject.yaml", &so)
	exprs := map[string]string{}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			exprs["alert "+r.Alert] = r.Expr
		}
	}
	for i, tr := range so.Spec.Triggers {
		exprs["trigger "+string(rune('0'+i))] = tr.Metadata["query"]
	}
	require.Len(t, exprs, 9)
	for what, e := range exprs {
		used := botrelayMetric.FindAllString(e, -1)
		if strings.Contains(e, "kube_deployment_status_replicas_ready") {
			continue // kube-state-metrics
		}
		require.NotEmpty(t, used, "%s names no botrelay metric", what)
		for _, m := range used {
			require.True(t, names[m], "%s queries %s, which the worker does not export", what, m)
		}
	}
}
