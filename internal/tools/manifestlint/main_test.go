package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDeployIsClean: the repository's deploy/ passes.
func TestDeployIsClean(t *testing.T) {
	require.Empty(t, checkDir("../../../deploy"))
}

func TestCheckYAML(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string // "" clean
	}{
		{name: "values file", doc: "config:\n  jetstream:\n    enabled: true\n"},
		{name: "broken yaml", doc: "a: [1,\n", want: "document 1"},
		{name: "no name", doc: "apiVersion: v1\nkind: ConfigMap\n", want: "metadata.name is required"},
		{name: "selector mismatch", doc: `apiVersion: apps/v1
kind: Deployment
metadata: {name: w}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: b}}
    spec: {containers: [{name: c, image: i}]}
`, want: "does not match"},
		{name: "container without image", doc: `apiVersion: apps/v1
kind: Deployment
metadata: {name: w}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec: {containers: [{name: c}]}
`, want: "containers[0]: image is required"},
		{name: "service port text", doc: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: http}]}\n", want: "must be a number"},
		{name: "scaled object bounds", doc: `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: w}
spec: {scaleTargetRef: {name: w}, minReplicaCount: 5, maxReplicaCount: 2, triggers: [{type: prometheus, metadata: {query: x}}]}
`, want: "minReplicaCount 5 > maxReplicaCount 2"},
		{name: "alert without severity", doc: `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: r}
spec: {groups: [{name: g, rules: [{alert: A, expr: up == 0, annotations: {summary: s}}]}]}
`, want: "labels.severity is required"},
		{name: "unknown kind", doc: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", want: `kind "Pod" is unknown`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := checkYAML("x.yaml", []byte(tt.doc))
			if tt.want == "" {
				require.Empty(t, errs)
				return
			}
			require.NotEmpty(t, errs)
			require.ErrorContains(t, errs[0], tt.want)
		})
	}
}

func TestKustomizationMissingFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "kustomization.yaml"),
		[]byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [gone.yaml]\n"), 0o600))
	errs := checkDir(dir)
	require.Len(t, errs, 1)
	require.ErrorContains(t, errs[0], "gone.yaml")
}

func TestCheckDashboard(t *testing.T) {
	require.Empty(t, checkDashboard([]byte(`{"title":"d","panels":[{"title":"p","targets":[{"expr":"up"}]}]}`)))
	require.NotEmpty(t, checkDashboard([]byte(`{"title":"d","panels":[{"title":"p","targets":[]}]}`)))
	require.NotEmpty(t, checkDashboard([]byte(`{"title":`)))
}
