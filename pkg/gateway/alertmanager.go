package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/botrelay/botrelay/pkg/alertmanager"
	"github.com/botrelay/botrelay/pkg/envelope"
)

// POST /v1/alertmanager/{target} takes Alertmanager's webhook (payload
// version 4) for a robot, a pool or a group, and stores one markdown
// message per notification (per member for a group), rendered by
// [Options.Alerts]. Its answers follow Alertmanager's retry rule, which
// retries only 5xx: 202 once stored (a retried notification is a
// duplicate of the first, stored once), 5xx only when it could not be
// stored — NATS down, and also the token's rate or quota, answered 503
// here instead of 429 — and 4xx for a payload or a target it can never
// accept.

// throttleKey is the context key of the status a rate or quota refusal
// answers (default 429).
type throttleKey struct{}

// retryable makes a rate or quota refusal of h answer 503 (with
// Retry-After): its caller retries 5xx only.
func retryable(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), throttleKey{}, http.StatusServiceUnavailable)))
	})
}

// throttleStatus is the status of a rate or quota refusal of r.
func throttleStatus(r *http.Request) int {
	if s, ok := r.Context().Value(throttleKey{}).(int); ok {
		return s
	}
	return http.StatusTooManyRequests
}

func (g *Gateway) postAlertmanager(w http.ResponseWriter, r *http.Request) {
	target := r.PathValue("target")
	if ps := scopeProblems(tokenOf(r), []string{target}, func(int) string { return "target" }); len(ps) > 0 {
		g.fail(w, r, forbidden(ps))
		return
	}
	if p := g.targetProblem(target); p != "" {
		g.fail(w, r, &requestError{status: http.StatusNotFound, msg: "unknown target", problems: []string{"target: " + p}})
		return
	}
	data, rerr := readBody(w, r, g.maxAM)
	if rerr != nil {
		g.fail(w, r, rerr)
		return
	}
	payload, err := alertmanager.Parse(data)
	if err != nil {
		status := http.StatusUnprocessableEntity
		if strings.Contains(err.Error(), "bad JSON") {
			status = http.StatusBadRequest
		}
		g.fail(w, r, &requestError{status: status, msg: "not an Alertmanager notification: " + strings.TrimPrefix(err.Error(), alertmanager.ErrInvalid.Error()+": ")})
		return
	}
	base := &envelope.Envelope{V: envelope.Version, ID: alertmanager.ID(payload), Robot: target,
		CreatedAt: g.now().UTC(), Labels: alertLabels(payload)}
	targets := g.expand("target", target)
	envs := make([]*envelope.Envelope, 0, len(targets))
	for _, t := range targets {
		env := base
		if g.pub.IsGroup(target) {
			env = base.ForRobot(t.name, 0)
		}
		md, err := g.renderAlerts(payload, t.name)
		if err == nil {
			env.Message = envelope.Message{Markdown: md}
			err = env.ValidateFor(g.sizeOf(t.name))
		}
		if err != nil { // the renderer keeps within the size: not the payload's fault
			g.log.Error("alertmanager notification not rendered", "target", t.name, "id", env.ID, "err", err)
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: "notification not rendered: " + clip(err.Error())})
			return
		}
		envs = append(envs, env)
	}
	if !g.reserve(w, r, len(envs)) {
		return
	}
	if !g.pub.IsGroup(target) {
		ack, err := g.pub.Publish(r.Context(), envs[0])
		if err != nil {
			g.publishFailed(w, r, envs[0], err)
			return
		}
		g.log.Info("alertmanager notification accepted", "id", envs[0].ID, "robot", target, "alerts", len(payload.Alerts),
			"token", tokenName(r), "sequence", ack.Sequence, "duplicate", ack.Duplicate)
		if ack.Duplicate {
			g.refund(r, 1)
		} else {
			g.metrics.storedN(tokenName(r), 1)
		}
		writeJSON(w, http.StatusAccepted, Result{ID: envs[0].ID, Robot: target, Sequence: ack.Sequence, Duplicate: ack.Duplicate})
		return
	}
	results, err := g.pub.PublishAll(r.Context(), envs)
	g.respondMulti(w, r, MultiResponse{ID: base.ID}, results, err)
}

// renderAlerts renders p for target with [Options.Alerts] and, should an
// operator's template fail on this payload, with the default one (logged):
// an alert is never lost to a template.
func (g *Gateway) renderAlerts(p *alertmanager.Payload, target string) (*envelope.Markdown, error) {
	var keyword string
	if ks := g.keywordsOf(target); len(ks) > 0 {
		keyword = ks[0]
	}
	md, err := g.alerts.Render(p, keyword, g.sizeOf(target))
	if err == nil || g.alerts == g.defaultAlerts {
		return md, err
	}
	g.log.Error("alertmanager template failed; the default template renders this notification", "target", target, "err", err)
	return g.defaultAlerts.Render(p, keyword, g.sizeOf(target))
}

// keywordsOf returns target's security keywords ([Options.Keywords]).
func (g *Gateway) keywordsOf(target string) []string {
	if g.keywords == nil {
		return nil
	}
	return g.keywords(target)
}

// alertLabels are the labels of a notification's message (for dead
// letters and their filters): source, receiver, status and, when the
// group has one, alertname.
func alertLabels(p *alertmanager.Payload) map[string]string {
	labels := map[string]string{"source": "alertmanager", "status": p.Status}
	if p.Receiver != "" {
		labels["receiver"] = clipBytes(p.Receiver, envelope.MaxLabelValueBytes)
	}
	if a := p.CommonLabels["alertname"]; a != "" {
		labels["alertname"] = clipBytes(a, envelope.MaxLabelValueBytes)
	}
	return labels
}

// clipBytes shortens s to at most n bytes, on a rune boundary.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// checkAlertTemplate checks that the renderer carries the keywords of
// each of robots that has some.
func checkAlertTemplate(r *alertmanager.Renderer, robots []string, keywords func(string) []string) error {
	if keywords == nil {
		return nil
	}
	var errs []error
	for _, rb := range robots {
		if err := r.CheckKeyword(keywords(rb)...); err != nil {
			errs = append(errs, fmt.Errorf("robot %q: %w", rb, err))
		}
	}
	return errors.Join(errs...)
}
