package gateway_test

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/alertmanager"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/gateway"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/stream"
)

// amPayload reads a real Alertmanager payload of pkg/alertmanager/testdata.
func amPayload(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "alertmanager", "testdata", name))
	require.NoError(t, err)
	return string(data)
}

// amKeywords: sre-bj has the keyword 告警, the WeCom pool oncall none.
func amKeywords(target string) []string {
	if target == "sre-bj" {
		return []string{"告警"}
	}
	return nil
}

// amGateway is groupGateway with the robots' keywords.
func amGateway(t *testing.T, opts gateway.Options) fixture {
	t.Helper()
	opts.Keywords = amKeywords
	return groupGateway(t, opts)
}

// rendered is what the default template makes of payload name for a
// robot with keyword and size.
func rendered(t *testing.T, name, keyword string, size envelope.Limits) *envelope.Markdown {
	t.Helper()
	p, err := alertmanager.Parse([]byte(amPayload(t, name)))
	require.NoError(t, err)
	r, err := alertmanager.New("")
	require.NoError(t, err)
	md, err := r.Render(p, keyword, size)
	require.NoError(t, err)
	return md
}

func amID(t *testing.T, name string) string {
	t.Helper()
	p, err := alertmanager.Parse([]byte(amPayload(t, name)))
	require.NoError(t, err)
	return alertmanager.ID(p)
}

func TestAlertmanagerFiringAndResolved(t *testing.T) {
	f := amGateway(t, gateway.Options{})
	dingtalk := envelope.Limits{}
	for i, name := range []string{"firing.json", "resolved.json"} {
		res := accepted(t, f.post(t, "/v1/alertmanager/sre-bj", amPayload(t, name)))
		require.Equal(t, gateway.Result{ID: amID(t, name), Robot: "sre-bj", Sequence: uint64(i + 1)}, res)
		status := strings.TrimSuffix(name, ".json")
		require.Equal(t, &envelope.Envelope{V: 1, ID: res.ID, Robot: "sre-bj", CreatedAt: now,
			Message: envelope.Message{Markdown: rendered(t, name, "告警", dingtalk)},
			Labels:  map[string]string{"source": "alertmanager", "status": status, "receiver": "dingtalk-sre", "alertname": "HighErrorRate"},
		}, f.stored(t, "sre-bj", res.Sequence))
	}
	env := f.stored(t, "sre-bj", 1)
	require.Equal(t, "告警 [FIRING:2] HighErrorRate", env.Message.Markdown.Title, "the robot's keyword heads the title")
	require.NoError(t, delivery.CheckKeywords(delivery.Robot{Name: "sre-bj", Platform: delivery.PlatformDingTalk, Keywords: []string{"告警"}}, env))
	require.Contains(t, f.stored(t, "sre-bj", 2).Message.Markdown.Title, "[RESOLVED] HighErrorRate")
	require.EqualValues(t, 2, f.count(t))
}

// TestAlertmanagerRetryDeduplicated: Alertmanager retries a notification
// it got no 2xx for; the retry has the same id and is stored once.
func TestAlertmanagerRetryDeduplicated(t *testing.T) {
	f := amGateway(t, gateway.Options{})
	body := amPayload(t, "firing.json")
	first := accepted(t, f.post(t, "/v1/alertmanager/sre-bj", body))
	for range 3 {
		again := accepted(t, f.post(t, "/v1/alertmanager/sre-bj", body))
		require.Equal(t, gateway.Result{ID: first.ID, Robot: "sre-bj", Sequence: first.Sequence, Duplicate: true}, again)
	}
	require.EqualValues(t, 1, f.count(t), "exactly one stored message")
}

// TestAlertmanagerStorm: 100 alerts in one notification make one message
// within the platform's size, the alerts left out counted.
func TestAlertmanagerStorm(t *testing.T) {
	f := amGateway(t, gateway.Options{})
	for _, target := range []string{"sre-bj", "oncall"} {
		res := accepted(t, f.post(t, "/v1/alertmanager/"+target, amPayload(t, "storm-100.json")))
		env := f.stored(t, target, res.Sequence)
		size := envelope.Limits{}
		if target == "oncall" {
			wecom, _ := delivery.LookupPlatform(delivery.PlatformWeCom)
			size = wecom.Size
		}
		require.NoError(t, env.ValidateFor(size), "within %s's size", target)
		md := env.Message.Markdown
		shown := strings.Count(md.Text, "#### 🔥 FIRING NodeDiskFull")
		require.Greater(t, shown, 0)
		require.Contains(t, md.Text, "+"+strconv.Itoa(100-shown)+" more")
		t.Logf("%s: %d of 100 alerts shown, %d bytes", target, shown, len(md.Text))
	}
	require.EqualValues(t, 2, f.count(t))
}

func TestAlertmanagerGroup(t *testing.T) {
	f := amGateway(t, gateway.Options{})
	id := amID(t, "firing.json")
	r := f.post(t, "/v1/alertmanager/all-sre", amPayload(t, "firing.json"))
	m := multi(t, r, http.StatusAccepted)
	require.Equal(t, gateway.MultiResponse{ID: id, Stored: 3, Results: []gateway.Result{
		{ID: id + ".sre-bj", Robot: "sre-bj", Sequence: 1},
		{ID: id + ".sre-sh", Robot: "sre-sh", Sequence: 2},
		{ID: id + ".oncall", Robot: "oncall", Sequence: 3},
	}}, m)
	// Each member gets the notification rendered for it: sre-bj with its
	// keyword, the others without.
	require.Equal(t, "告警 [FIRING:2] HighErrorRate", f.stored(t, "sre-bj", 1).Message.Markdown.Title)
	require.Equal(t, "[FIRING:2] HighErrorRate", f.stored(t, "sre-sh", 2).Message.Markdown.Title)
	require.Equal(t, "[FIRING:2] HighErrorRate", f.stored(t, "oncall", 3).Message.Markdown.Title)
	// A retry: duplicates only.
	m = multi(t, f.post(t, "/v1/alertmanager/all-sre", amPayload(t, "firing.json")), http.StatusAccepted)
	for _, res := range m.Results {
		require.True(t, res.Duplicate)
	}
	require.EqualValues(t, 3, f.count(t))
}

func TestAlertmanagerRefusals(t *testing.T) {
	f := amGateway(t, gateway.Options{})
	firing := amPayload(t, "firing.json")
	tests := []struct {
		name, path, body string
		status           int
		want             string
	}{
		{name: "unknown target", path: "/v1/alertmanager/ghost", body: firing, status: http.StatusNotFound, want: "unknown target"},
		{name: "bad target name", path: "/v1/alertmanager/a.b", body: firing, status: http.StatusNotFound, want: "unknown target"},
		{name: "bad JSON", path: "/v1/alertmanager/sre-bj", body: `{"version":"4",`, status: http.StatusBadRequest, want: "bad JSON"},
		{name: "version 3", path: "/v1/alertmanager/sre-bj", body: strings.Replace(firing, `"version": "4"`, `"version": "3"`, 1),
			status: http.StatusUnprocessableEntity, want: `version: "3", want "4"`},
		{name: "no alerts", path: "/v1/alertmanager/sre-bj", body: `{"version":"4","status":"firing","alerts":[]}`,
			status: http.StatusUnprocessableEntity, want: "alerts: none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.post(t, tt.path, tt.body)
			require.Equal(t, tt.status, r.status, "body %s", r.body)
			msg, _ := r.errBody(t)
			require.Contains(t, msg, tt.want)
		})
	}
	require.Zero(t, f.count(t))
}

// TestAlertmanagerNATSDown: not stored is a 5xx, which Alertmanager
// retries.
func TestAlertmanagerNATSDown(t *testing.T) {
	ns := testenv.StartNATS(t) // private: this test stops it
	_, js := testenv.Connect(t, ns.ClientURL())
	topo := stream.Topology{Prefix: "amdown" + testenv.Unique()}
	f := serve(t, js, topo, gateway.Options{}, publisher.WithDefaultTimeout(300*time.Millisecond), publisher.WithGroups(members))
	ns.Shutdown()
	ns.WaitForShutdown()
	r := f.post(t, "/v1/alertmanager/ops", amPayload(t, "firing.json"))
	require.Equal(t, http.StatusServiceUnavailable, r.status, "body %s", r.body)
	require.Equal(t, "5", r.header.Get("Retry-After"))
	r = f.post(t, "/v1/alertmanager/all-sre", amPayload(t, "firing.json"))
	m := multi(t, r, http.StatusServiceUnavailable)
	require.Equal(t, 3, m.Failed)
}

// TestAlertmanagerThrottleIs5xx: over the token's quota the notification
// is not stored: 503 (Alertmanager retries it), not 429 (it would drop it).
func TestAlertmanagerThrottleIs5xx(t *testing.T) {
	f := amGateway(t, gateway.Options{Limiter: limiterFor(t),
		Access: []gateway.Token{{Name: "am", SHA256: sha256.Sum256([]byte(tokA)), MaxMessagesPerMinute: 1}}})
	accepted(t, f.post(t, "/v1/alertmanager/sre-bj", amPayload(t, "firing.json"), bearer(tokA)...))
	r := f.post(t, "/v1/alertmanager/sre-bj", amPayload(t, "resolved.json"), bearer(tokA)...)
	require.Equal(t, http.StatusServiceUnavailable, r.status, "body %s", r.body)
	require.NotEmpty(t, r.header.Get("Retry-After"))
	// The other endpoints keep their 429.
	r = f.post(t, "/v1/messages", `{"robot":"ops","text":"x"}`, bearer(tokA)...)
	require.Equal(t, http.StatusTooManyRequests, r.status)
	r = f.post(t, "/v1/alertmanager/sre-bj", amPayload(t, "firing.json"))
	require.Equal(t, http.StatusUnauthorized, r.status, "authenticated like the other endpoints")
	require.EqualValues(t, 1, f.count(t))
}

func TestAlertmanagerTemplate(t *testing.T) {
	own, err := alertmanager.New(`{{define "title"}}{{.Keyword}} {{len .Alerts}} alerts{{end}}{{define "text"}}{{range .Firing}}- {{.Labels.instance}}
{{end}}{{end}}`)
	require.NoError(t, err)
	f := amGateway(t, gateway.Options{Alerts: own})
	res := accepted(t, f.post(t, "/v1/alertmanager/sre-bj", amPayload(t, "firing.json")))
	require.Equal(t, &envelope.Markdown{Title: "告警 2 alerts", Text: "- api-1:9100\n- api-2:9100"}, f.stored(t, "sre-bj", res.Sequence).Message.Markdown)

	// A template without the keyword of a robot that has one is refused.
	bare, err := alertmanager.New(`{{define "title"}}alerts{{end}}{{define "text"}}x{{end}}`)
	require.NoError(t, err)
	pub, err := publisher.New(f.js, f.topo)
	require.NoError(t, err)
	_, err = gateway.New(pub, gateway.Options{NoAuth: true, Robots: []string{"sre-bj", "ops"}, Keywords: amKeywords, Alerts: bare})
	require.ErrorIs(t, err, gateway.ErrInvalidOption)
	require.ErrorContains(t, err, `robot "sre-bj"`)
	require.ErrorContains(t, err, "{{.Keyword}}")

	// A template failing on a payload falls back to the default one.
	picky, err := alertmanager.New(`{{define "title"}}{{.Keyword}} {{index .Alerts 1}}{{end}}{{define "text"}}x{{end}}`)
	require.NoError(t, err)
	f = amGateway(t, gateway.Options{Alerts: picky})
	res = accepted(t, f.post(t, "/v1/alertmanager/sre-bj", amPayload(t, "resolved.json")))
	require.Equal(t, rendered(t, "resolved.json", "告警", envelope.Limits{}), f.stored(t, "sre-bj", res.Sequence).Message.Markdown)
	require.Contains(t, f.logs.String(), "alertmanager template failed")

}

// TestAlertmanagerMetricsEndpoint: the endpoint label is the route, not
// the path: one series whatever the targets (and unauthenticated callers)
// name.
func TestAlertmanagerMetricsEndpoint(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := amGateway(t, gateway.Options{Metrics: gateway.NewMetrics(reg),
		Access: []gateway.Token{{Name: "am", SHA256: sha256.Sum256([]byte(tokA))}}})
	accepted(t, f.post(t, "/v1/alertmanager/sre-bj", amPayload(t, "firing.json"), bearer(tokA)...))
	accepted(t, f.post(t, "/v1/alertmanager/sre-sh", amPayload(t, "firing.json"), bearer(tokA)...))
	for _, target := range []string{"x1", "x2", "x3"} {
		require.Equal(t, http.StatusUnauthorized, f.post(t, "/v1/alertmanager/"+target, "{}").status)
	}
	require.Equal(t, map[string]float64{
		`botrelay_gateway_messages_stored_total{token="am"}`:                                            2,
		`botrelay_gateway_requests_total{endpoint="/v1/alertmanager/{target}",status="202",token="am"}`: 2,
		`botrelay_gateway_requests_total{endpoint="/v1/alertmanager/{target}",status="401",token=""}`:   3,
	}, gather(t, reg))
}

// TestAlertmanagerStormOverMaxBody: Alertmanager sends every alert of a
// group in one notification (max_alerts 0 by default), and a storm's is
// larger than the other endpoints' body limit; answering it 413 would lose
// it (Alertmanager retries 5xx only). 3,000 alerts (over 1 MiB) are
// stored as one message, the alerts left out counted.
func TestAlertmanagerStormOverMaxBody(t *testing.T) {
	f := amGateway(t, gateway.Options{})
	p := alertmanager.Payload{Version: alertmanager.Version, GroupKey: `{}:{alertname="KubePodNotReady"}`, Status: alertmanager.Firing,
		Receiver: "dingtalk-sre", GroupLabels: map[string]string{"alertname": "KubePodNotReady"},
		CommonLabels: map[string]string{"alertname": "KubePodNotReady"}, CommonAnnotations: map[string]string{}}
	const n = 3000
	for i := range n {
		p.Alerts = append(p.Alerts, alertmanager.Alert{Status: alertmanager.Firing,
			Labels: map[string]string{"alertname": "KubePodNotReady", "namespace": "prod", "pod": "api-" + strconv.Itoa(i), "severity": "warning"},
			Annotations: map[string]string{"summary": "Pod prod/api-" + strconv.Itoa(i) + " has been in a non-ready state for longer than 15 minutes.",
				"description": strings.Repeat("d", 200)},
			StartsAt: time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC), GeneratorURL: "http://prometheus.example:9090/graph?g0.expr=" + strings.Repeat("x", 150),
			Fingerprint: strconv.FormatInt(int64(1<<40+i), 16)})
	}
	body, err := json.Marshal(p)
	require.NoError(t, err)
	require.Greater(t, len(body), gateway.DefaultMaxBodyBytes)
	res := accepted(t, f.post(t, "/v1/alertmanager/sre-bj", string(body)))
	md := f.stored(t, "sre-bj", res.Sequence).Message.Markdown
	shown := strings.Count(md.Text, "#### 🔥 FIRING KubePodNotReady")
	require.Positive(t, shown)
	require.Contains(t, md.Text, "+"+strconv.Itoa(n-shown)+" more")
	require.EqualValues(t, 1, f.count(t))
}
