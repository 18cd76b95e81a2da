// Command manifestlint checks botrelay's deployment files offline, for
// "make lint": every YAML document under the given directories parses, and
// the kinds botrelay ships have the fields Kubernetes (or the operator
// that owns the kind) would refuse them without; kustomizations list files
// that exist; JSON files (the Grafana dashboard) parse and every panel has
// a query. It is a small schema check, not kubeconform: it knows only the
// kinds below.
//
//	go run ./internal/tools/manifestlint deploy
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

func main() {
	errs := 0
	for _, dir := range os.Args[1:] {
		for _, err := range checkDir(dir) {
			fmt.Fprintln(os.Stderr, err)
			errs++
		}
	}
	if errs > 0 {
		fmt.Fprintf(os.Stderr, "manifestlint: %d problems\n", errs)
		os.Exit(1)
	}
}

// checkDir checks every .yaml, .yml and .json file under dir.
func checkDir(dir string) []error {
	var out []error
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml":
			for _, e := range checkYAML(path, data) {
				out = append(out, fmt.Errorf("%s: %w", path, e))
			}
		case ".json":
			for _, e := range checkDashboard(data) {
				out = append(out, fmt.Errorf("%s: %w", path, e))
			}
		}
		return nil
	})
	if err != nil {
		out = append(out, err)
	}
	return out
}

// doc is a parsed YAML document.
type doc = map[string]any

// checkYAML parses every document of a YAML file and checks the kinds it
// knows.
func checkYAML(path string, data []byte) []error {
	var out []error
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var d doc
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return append(out, fmt.Errorf("document %d: %w", i+1, err))
		}
		if d == nil {
			continue
		}
		for _, e := range checkDoc(path, d) {
			out = append(out, fmt.Errorf("document %d (%v %v): %w", i+1, d["kind"], get(d, "metadata", "name"), e))
		}
	}
	return out
}

// get walks d along keys; nil when a key is missing.
func get(d any, keys ...string) any {
	for _, k := range keys {
		m, ok := d.(map[string]any)
		if !ok {
			return nil
		}
		d = m[k]
	}
	return d
}

func str(d any, keys ...string) string { s, _ := get(d, keys...).(string); return s }

func list(d any, keys ...string) []any { l, _ := get(d, keys...).([]any); return l }

// required reports the keys paths missing from d.
func required(d any, paths ...string) []error {
	var out []error
	for _, p := range paths {
		if v := get(d, strings.Split(p, ".")...); v == nil || v == "" {
			out = append(out, fmt.Errorf("%s is required", p))
		}
	}
	return out
}

// checkDoc checks one document. A document without apiVersion and kind
// (a Helm values file) only has to parse.
func checkDoc(path string, d doc) []error {
	kind := str(d, "kind")
	if kind == "" && d["apiVersion"] == nil {
		return nil
	}
	out := required(d, "apiVersion", "kind")
	if kind != "Kustomization" {
		out = append(out, required(d, "metadata.name")...)
	}
	switch kind {
	case "Deployment":
		out = append(out, required(d, "spec.selector.matchLabels", "spec.template.metadata.labels")...)
		sel, _ := get(d, "spec", "selector", "matchLabels").(map[string]any)
		labels, _ := get(d, "spec", "template", "metadata", "labels").(map[string]any)
		for k, v := range sel {
			if labels[k] != v {
				out = append(out, fmt.Errorf("spec.selector.matchLabels %s=%v does not match the pod template's labels", k, v))
			}
		}
		cs := list(d, "spec", "template", "spec", "containers")
		if len(cs) == 0 {
			out = append(out, errors.New("spec.template.spec.containers is required"))
		}
		for i, c := range cs {
			for _, e := range required(c, "name", "image") {
				out = append(out, fmt.Errorf("containers[%d]: %w", i, e))
			}
		}
	case "Service":
		ps := list(d, "spec", "ports")
		if len(ps) == 0 {
			out = append(out, errors.New("spec.ports is required"))
		}
		for i, p := range ps {
			if _, ok := get(p, "port").(int); !ok {
				out = append(out, fmt.Errorf("spec.ports[%d].port must be a number", i))
			}
		}
	case "ConfigMap", "Secret":
	case "PodDisruptionBudget":
		out = append(out, required(d, "spec.selector")...)
	case "ScaledObject":
		out = append(out, required(d, "spec.scaleTargetRef.name")...)
		lo, _ := get(d, "spec", "minReplicaCount").(int)
		hi, ok := get(d, "spec", "maxReplicaCount").(int)
		if ok && lo > hi {
			out = append(out, fmt.Errorf("minReplicaCount %d > maxReplicaCount %d", lo, hi))
		}
		ts := list(d, "spec", "triggers")
		if len(ts) == 0 {
			out = append(out, errors.New("spec.triggers is required"))
		}
		for i, t := range ts {
			for _, e := range required(t, "type", "metadata") {
				out = append(out, fmt.Errorf("triggers[%d]: %w", i, e))
			}
		}
	case "PrometheusRule":
		gs := list(d, "spec", "groups")
		if len(gs) == 0 {
			out = append(out, errors.New("spec.groups is required"))
		}
		for i, g := range gs {
			for j, r := range list(g, "rules") {
				for _, e := range required(r, "alert", "expr", "labels.severity", "annotations.summary") {
					out = append(out, fmt.Errorf("groups[%d].rules[%d]: %w", i, j, e))
				}
			}
		}
	case "Kustomization":
		for _, r := range list(d, "resources") {
			name, _ := r.(string)
			if _, err := os.Stat(filepath.Join(filepath.Dir(path), name)); err != nil {
				out = append(out, fmt.Errorf("resources: %s: %w", name, err))
			}
		}
	default:
		out = append(out, fmt.Errorf("kind %q is unknown to manifestlint: add its check", kind))
	}
	return out
}

// checkDashboard parses a Grafana dashboard and checks that every panel
// has at least one query.
func checkDashboard(data []byte) []error {
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return []error{err}
	}
	var out []error
	if d.Title == "" || len(d.Panels) == 0 {
		out = append(out, errors.New("a dashboard needs a title and panels"))
	}
	for i, p := range d.Panels {
		if len(p.Targets) == 0 {
			out = append(out, fmt.Errorf("panels[%d] %q has no query", i, p.Title))
		}
		for j, t := range p.Targets {
			if strings.TrimSpace(t.Expr) == "" {
				out = append(out, fmt.Errorf("panels[%d] %q targets[%d]: empty expr", i, p.Title, j))
			}
		}
	}
	return out
}
