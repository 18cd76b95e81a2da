package alertmanager_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/alertmanager"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
)

// payload parses testdata/name.
func payload(t *testing.T, name string) *alertmanager.Payload {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	p, err := alertmanager.Parse(data)
	require.NoError(t, err)
	return p
}

func platformSize(t *testing.T, name string) envelope.Limits {
	t.Helper()
	p, ok := delivery.LookupPlatform(name)
	require.True(t, ok)
	return p.Size
}

func TestRenderFiring(t *testing.T) {
	r, err := alertmanager.New("")
	require.NoError(t, err)
	md, err := r.Render(payload(t, "firing.json"), "告警", platformSize(t, delivery.PlatformDingTalk))
	require.NoError(t, err)
	require.Equal(t, "告警 [FIRING:2] HighErrorRate", md.Title)
	require.Equal(t, "### 告警 [FIRING:2] HighErrorRate\n\n"+
		"#### 🔥 FIRING HighErrorRate · critical\n\n"+
		"**5xx rate above 5% on api-1**\n\n"+
		"api-1 answered 7.2% of requests with a 5xx over the last 5 minutes.\n\n"+
		"- labels: `instance=api-1:9100` `job=api`\n"+
		"- started: 2025-03-01 11:58:30 UTC\n"+
		"- [source](http://prometheus.example:9090/graph?g0.expr=rate%28http_requests_total%7Bcode%3D~%225..%22%7D%5B5m%5D%29&g0.tab=1)\n\n"+
		"#### 🔥 FIRING HighErrorRate · critical\n\n"+
		"**5xx rate above 5% on api-2**\n\n"+
		"- labels: `instance=api-2:9100` `job=api`\n"+
		"- started: 2025-03-01 11:59:00 UTC\n"+
		"- [source](http://prometheus.example:9090/graph?g0.expr=rate%28http_requests_total%5B5m%5D%29)", md.Text)
}

func TestRenderResolved(t *testing.T) {
	r, err := alertmanager.New("")
	require.NoError(t, err)
	md, err := r.Render(payload(t, "resolved.json"), "", platformSize(t, delivery.PlatformDingTalk))
	require.NoError(t, err)
	require.Equal(t, "[RESOLVED] HighErrorRate", md.Title, "no keyword: no prefix")
	require.Equal(t, "### [RESOLVED] HighErrorRate\n\n"+
		"#### ✅ RESOLVED HighErrorRate · critical\n\n"+
		"**5xx rate above 5% on api-1**\n\n"+
		"- labels: `instance=api-1:9100` `job=api`\n"+
		"- started: 2025-03-01 11:58:30 UTC, ended: 2025-03-01 12:07:30 UTC\n"+
		"- [source](http://prometheus.example:9090/graph?g0.expr=rate%28http_requests_total%5B5m%5D%29)", md.Text)
}

// TestRenderStorm: 100 alerts do not fit one post: as many as fit are
// shown, firing ones first, in order, and "+N more" counts the others.
func TestRenderStorm(t *testing.T) {
	r, err := alertmanager.New("")
	require.NoError(t, err)
	p := payload(t, "storm-100.json")
	for _, platform := range []string{delivery.PlatformDingTalk, delivery.PlatformWeCom, delivery.PlatformPOPO, delivery.PlatformFeishu} {
		t.Run(platform, func(t *testing.T) {
			size := platformSize(t, platform)
			md, err := r.Render(p, "告警", size)
			require.NoError(t, err)
			env := envelope.New("x", envelope.Message{Markdown: md}, envelope.WithID("x"))
			require.NoError(t, env.ValidateFor(size), "within the platform's size")
			shown := strings.Count(md.Text, "#### ")
			require.Greater(t, shown, 0)
			require.Less(t, shown, 100)
			require.Contains(t, md.Text, "**+"+strconv.Itoa(100-shown)+" more** in [Alertmanager](http://alertmanager.example:9093)")
			require.Equal(t, "告警 [FIRING:90] NodeDiskFull", md.Title)
			// The shown alerts are the first firing ones, in order.
			for i := range min(shown, 90) {
				require.Contains(t, md.Text, fmt.Sprintf("node-%03d:9100", i+i/9))
			}
			require.NotContains(t, md.Text, "RESOLVED", "firing alerts come first")
			t.Logf("%s: %d of 100 alerts in %d bytes", platform, shown, len(md.Text))
		})
	}
}

func TestRenderHugeAnnotationCut(t *testing.T) {
	tmpl := `{{define "title"}}{{.Keyword}} alerts{{end}}{{define "text"}}{{.Status}}: {{.CommonAnnotations.description}}{{end}}`
	r, err := alertmanager.New(tmpl)
	require.NoError(t, err)
	p := payload(t, "resolved.json")
	p.CommonAnnotations["description"] = strings.Repeat("界", 30000)
	size := platformSize(t, delivery.PlatformDingTalk)
	md, err := r.Render(p, "告警", size)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(md.Text, "…"))
	env := envelope.New("x", envelope.Message{Markdown: md}, envelope.WithID("x"))
	require.NoError(t, env.ValidateFor(size))
	require.Greater(t, len(md.Text), 15000, "cut near the limit, not far below")
}

func TestTemplates(t *testing.T) {
	tests := []struct {
		name, tmpl string
		want       string // "" for valid
	}{
		{name: "default", tmpl: ""},
		{name: "own", tmpl: `{{define "title"}}{{.Keyword}} {{.Status}}{{end}}{{define "text"}}{{range .Alerts}}{{.Labels.alertname}} {{end}}{{end}}`},
		{name: "not parsable", tmpl: `{{define "title"}}{{.Status{{end}}`, want: "bad template"},
		{name: "no title", tmpl: `{{define "text"}}x{{end}}`, want: `no {{define "title"}}`},
		{name: "no text", tmpl: `{{define "title"}}x{{end}}`, want: `no {{define "text"}}`},
		{name: "fails on execute", tmpl: `{{define "title"}}{{.Nope}}{{end}}{{define "text"}}x{{end}}`, want: "can't evaluate field Nope"},
		{name: "empty text", tmpl: `{{define "title"}}x{{end}}{{define "text"}} {{end}}`, want: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := alertmanager.New(tt.tmpl)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, alertmanager.ErrTemplate)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestCheckKeyword(t *testing.T) {
	def, err := alertmanager.New("")
	require.NoError(t, err)
	require.NoError(t, def.CheckKeyword("告警", "alert"))
	require.NoError(t, def.CheckKeyword())
	literal, err := alertmanager.New(`{{define "title"}}alert {{.Status}}{{end}}{{define "text"}}x{{end}}`)
	require.NoError(t, err)
	require.NoError(t, literal.CheckKeyword("告警", "alert"), "a keyword written literally is carried")
	err = literal.CheckKeyword("告警")
	require.ErrorIs(t, err, alertmanager.ErrTemplate)
	require.ErrorContains(t, err, `none of the keywords ["告警"]`)
}

func TestParse(t *testing.T) {
	good := `{"version":"4","status":"firing","groupKey":"g","alerts":[{"status":"firing","labels":{"a":"b"}}],"future":1}`
	tests := []struct {
		name, body, want string
	}{
		{name: "good, unknown fields ignored", body: good},
		{name: "not json", body: `{"version":`, want: "bad JSON"},
		{name: "not an object", body: `[1]`, want: "bad JSON"},
		{name: "trailing data", body: good + `{}`, want: "data after the object"},
		{name: "version 3", body: strings.Replace(good, `"4"`, `"3"`, 1), want: `version: "3", want "4"`},
		{name: "no alerts", body: `{"version":"4","status":"firing","alerts":[]}`, want: "alerts: none"},
		{name: "bad status", body: strings.Replace(good, `"status":"firing","labels"`, `"status":"burning","labels"`, 1), want: `alerts[0].status: "burning"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := alertmanager.Parse([]byte(tt.body))
			if tt.want == "" {
				require.NoError(t, err)
				require.Len(t, p.Alerts, 1)
				return
			}
			require.True(t, errors.Is(err, alertmanager.ErrInvalid), "%v", err)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestID(t *testing.T) {
	firing := payload(t, "firing.json")
	id := alertmanager.ID(firing)
	require.Regexp(t, `^am-[0-9a-f]{32}$`, id)
	require.Equal(t, id, alertmanager.ID(payload(t, "firing.json")), "a retry has the same id")

	// The alerts' order does not matter.
	swapped := payload(t, "firing.json")
	swapped.Alerts[0], swapped.Alerts[1] = swapped.Alerts[1], swapped.Alerts[0]
	require.Equal(t, id, alertmanager.ID(swapped))

	changes := map[string]func(p *alertmanager.Payload){
		"an alert resolved":     func(p *alertmanager.Payload) { p.Alerts[1].Status = alertmanager.Resolved },
		"an alert firing again": func(p *alertmanager.Payload) { p.Alerts[0].StartsAt = p.Alerts[0].StartsAt.Add(3600e9) },
		"another group":         func(p *alertmanager.Payload) { p.GroupKey += "x" },
		"an alert fewer":        func(p *alertmanager.Payload) { p.Alerts = p.Alerts[:1] },
		"another alert":         func(p *alertmanager.Payload) { p.Alerts[1].Fingerprint = "ffff" },
	}
	for name, change := range changes {
		p := payload(t, "firing.json")
		change(p)
		require.NotEqual(t, id, alertmanager.ID(p), name)
	}
	// Without fingerprints (an old Alertmanager), the labels stand in.
	a, b := payload(t, "firing.json"), payload(t, "firing.json")
	for i := range a.Alerts {
		a.Alerts[i].Fingerprint, b.Alerts[i].Fingerprint = "", ""
	}
	require.Equal(t, alertmanager.ID(a), alertmanager.ID(b))
	b.Alerts[0].Labels["instance"] = "api-9:9100"
	require.NotEqual(t, alertmanager.ID(a), alertmanager.ID(b))
}
