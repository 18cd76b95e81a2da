package alertmanager

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Version is the webhook payload version this package reads.
const Version = "4"

// ErrInvalid is matched by every error of [Parse]: a payload that can
// never be accepted (Alertmanager must not retry it).
var ErrInvalid = errors.New("alertmanager: invalid payload")

// Statuses of a notification and of an alert.
const (
	Firing   = "firing"
	Resolved = "resolved"
)

// Payload is Alertmanager's webhook body, version 4.
type Payload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a [Payload].
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Parse decodes and checks a webhook body. Fields it does not know are
// ignored (a later Alertmanager may add some); a body that is not JSON, of
// another version, without alerts or with an alert of an unknown status
// is an error matching [ErrInvalid].
func Parse(data []byte) (*Payload, error) {
	var p Payload
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: bad JSON: %s", ErrInvalid, strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: bad JSON: data after the object", ErrInvalid)
	}
	var problems []string
	if p.Version != Version {
		problems = append(problems, fmt.Sprintf("version: %q, want %q (Alertmanager's webhook payload version 4)", clip(p.Version, 16), Version))
	}
	if len(p.Alerts) == 0 {
		problems = append(problems, "alerts: none: nothing to notify")
	}
	if p.Status != Firing && p.Status != Resolved {
		problems = append(problems, fmt.Sprintf("status: %q, want firing or resolved", clip(p.Status, 16)))
	}
	for i, a := range p.Alerts {
		if a.Status != Firing && a.Status != Resolved {
			problems = append(problems, fmt.Sprintf("alerts[%d].status: %q, want firing or resolved", i, clip(a.Status, 16)))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return &p, nil
}

// ID returns the message id of the notification p: "am-" and 32 hex
// digits of a SHA-256 over its groupKey and, in fingerprint order, each
// alert's fingerprint (its labels when it has none), status and start
// time. A retry of one notification has the same id, so the stream stores
// it once; a later notification of the group with an alert changed
// (resolved, or firing again with a new start) has another one.
func ID(p *Payload) string {
	type key struct{ fp, status, start string }
	keys := make([]key, len(p.Alerts))
	for i, a := range p.Alerts {
		fp := a.Fingerprint
		if fp == "" {
			fp = labelString(a.Labels)
		}
		keys[i] = key{fp: fp, status: a.Status, start: a.StartsAt.UTC().Format(time.RFC3339Nano)}
	}
	slices.SortFunc(keys, func(a, b key) int {
		return strings.Compare(a.fp+"\x00"+a.start+"\x00"+a.status, b.fp+"\x00"+b.start+"\x00"+b.status)
	})
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s\n", len(p.GroupKey), p.GroupKey)
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s %s %s\n", len(k.fp), k.fp, k.status, k.start)
	}
	return "am-" + hex.EncodeToString(h.Sum(nil))[:32]
}

// labelString is labels as sorted k="v" pairs.
func labelString(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q,", k, labels[k])
	}
	return b.String()
}

// clip shortens s to at most n bytes for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
