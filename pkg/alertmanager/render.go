package alertmanager

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/botrelay/botrelay/pkg/envelope"
)

// DefaultTemplate is the template a [Renderer] uses without one of its
// own: a title "<keyword> [FIRING:3] HighLatency" and, per alert, its
// status, alertname, severity, summary and description, other labels,
// start (and end) and a link to its source; "+N more" for the alerts cut.
//
//go:embed default.tmpl
var DefaultTemplate string

// ErrTemplate is matched by the errors of [New] for a template that
// cannot be used.
var ErrTemplate = errors.New("alertmanager: bad template")

// Data is what a template is executed with: the payload's fields
// (.Receiver, .Status, .GroupLabels, .CommonLabels, .CommonAnnotations,
// .ExternalURL, .GroupKey; .Alerts are all of them) and the following.
type Data struct {
	Payload
	// Keyword is a security keyword of the robot the message is for
	// ("" when it has none): the default title starts with it, so the
	// platform accepts the message. A template of one's own must carry
	// it too (or one of the robot's keywords literally).
	Keyword string
	// Firing and Resolved are the alerts shown, in payload order: all of
	// them unless the message had to be cut to the platform's size.
	Firing, Resolved []Alert
	// NumFiring and NumResolved count the payload's alerts.
	NumFiring, NumResolved int
	// Omitted counts the alerts not shown: cut here, plus those
	// Alertmanager truncated (max_alerts).
	Omitted int
}

// Renderer renders notifications with a template that defines "title"
// (the markdown message's title, one line) and "text" (its body). It is
// safe for concurrent use.
type Renderer struct {
	tmpl *template.Template
}

// funcs are the functions templates may use besides the built-in ones.
var funcs = template.FuncMap{
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	// labels formats labels as `k=v` pairs in key order, leaving out the
	// keys given.
	"labels": func(labels map[string]string, without ...string) string {
		keys := make([]string, 0, len(labels))
		for k := range labels {
			if !slices.Contains(without, k) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = "`" + k + "=" + labels[k] + "`"
		}
		return strings.Join(parts, " ")
	},
	// ts formats a time in UTC, "" for the zero time.
	"ts": func(t time.Time) string {
		if t.IsZero() || t.Year() <= 1 {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
}

// New returns a renderer of text, a Go text/template defining "title" and
// "text" ("" for [DefaultTemplate]). It is checked by rendering a sample
// notification: an error matching [ErrTemplate] tells what is wrong.
func New(text string) (*Renderer, error) {
	if text == "" {
		text = DefaultTemplate
	}
	t, err := template.New("alertmanager").Funcs(funcs).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	for _, name := range []string{"title", "text"} {
		if t.Lookup(name) == nil {
			return nil, fmt.Errorf(`%w: no {{define %q}}: a template defines "title" and "text"`, ErrTemplate, name)
		}
	}
	r := &Renderer{tmpl: t}
	md, err := r.execute(sampleData(""))
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(md.Title) == "" || strings.TrimSpace(md.Text) == "" {
		return nil, fmt.Errorf("%w: the title or the text of a sample notification is empty", ErrTemplate)
	}
	return r, nil
}

// sampleData is a notification of one firing and one resolved alert.
func sampleData(keyword string) Data {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	p := Payload{Version: Version, GroupKey: "{}:{alertname=\"Sample\"}", Status: Firing, Receiver: "sample",
		GroupLabels: map[string]string{"alertname": "Sample"}, CommonLabels: map[string]string{"alertname": "Sample"},
		CommonAnnotations: map[string]string{}, ExternalURL: "http://alertmanager.example:9093",
		Alerts: []Alert{
			{Status: Firing, Labels: map[string]string{"alertname": "Sample", "severity": "critical", "instance": "db-3"},
				Annotations: map[string]string{"summary": "sample summary", "description": "sample description"},
				StartsAt:    start, GeneratorURL: "http://prometheus.example:9090/graph", Fingerprint: "0000000000000001"},
			{Status: Resolved, Labels: map[string]string{"alertname": "Sample", "severity": "warning", "instance": "db-4"},
				Annotations: map[string]string{"summary": "sample summary"},
				StartsAt:    start, EndsAt: start.Add(5 * time.Minute), Fingerprint: "0000000000000002"},
		}}
	return data(&p, keyword, len(p.Alerts))
}

// CheckKeyword reports an error when the renderer's messages would lack
// keyword (a robot's security keyword): the platform would refuse them
// and the workers dead-letter them. It renders a sample notification for
// a robot with keywords (all of them given, any one suffices).
func (r *Renderer) CheckKeyword(keywords ...string) error {
	if len(keywords) == 0 {
		return nil
	}
	md, err := r.execute(sampleData(keywords[0]))
	if err != nil {
		return err
	}
	for _, k := range keywords {
		if k != "" && (strings.Contains(md.Title, k) || strings.Contains(md.Text, k)) {
			return nil
		}
	}
	return fmt.Errorf("%w: a rendered message carries none of the keywords %q: use {{.Keyword}} in the title", ErrTemplate, keywords)
}

// data is the template data of p showing its first n alerts (firing
// ones first).
func data(p *Payload, keyword string, n int) Data {
	d := Data{Payload: *p, Keyword: keyword}
	var firing, resolved []Alert
	for _, a := range p.Alerts {
		if a.Status == Firing {
			firing = append(firing, a)
		} else {
			resolved = append(resolved, a)
		}
	}
	d.NumFiring, d.NumResolved = len(firing), len(resolved)
	d.Firing = firing[:min(n, len(firing))]
	d.Resolved = resolved[:min(max(n-len(firing), 0), len(resolved))]
	d.Omitted = len(p.Alerts) - len(d.Firing) - len(d.Resolved) + max(p.TruncatedAlerts, 0)
	return d
}

// execute renders d.
func (r *Renderer) execute(d Data) (*envelope.Markdown, error) {
	var title, text bytes.Buffer
	if err := r.tmpl.ExecuteTemplate(&title, "title", d); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	if err := r.tmpl.ExecuteTemplate(&text, "text", d); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	t := strings.Join(strings.Fields(title.String()), " ") // one line
	return &envelope.Markdown{Title: t, Text: strings.TrimSpace(text.String())}, nil
}

// Render renders p for a robot whose security keyword is keyword ("" for
// none) as one markdown message within size (the robot's platform's
// rules, see envelope.Limits): as many alerts as fit, firing ones first,
// the others counted in Data.Omitted ("+N more" in the default template).
// When not even the title and the count fit, the text is cut, marked
// "…".
func (r *Renderer) Render(p *Payload, keyword string, size envelope.Limits) (*envelope.Markdown, error) {
	fits := func(md *envelope.Markdown) bool {
		env := envelope.New("probe", envelope.Message{Markdown: md}, envelope.WithID("probe"))
		return !errors.Is(env.ValidateFor(size), envelope.ErrTooLarge)
	}
	n := len(p.Alerts)
	md, err := r.execute(data(p, keyword, n))
	if err != nil {
		return nil, err
	}
	if fits(md) {
		return md, nil
	}
	// The most alerts that fit: fits(k) is monotone in k.
	lo, hi := 0, n-1 // fits(n) is false
	var best *envelope.Markdown
	for lo <= hi {
		mid := (lo + hi) / 2
		m, err := r.execute(data(p, keyword, mid))
		if err != nil {
			return nil, err
		}
		if fits(m) {
			best, lo = m, mid+1
		} else {
			hi = mid - 1
		}
	}
	if best != nil {
		return best, nil
	}
	// Not even none of the alerts fits (a huge common annotation): cut the text.
	md, _ = r.execute(data(p, keyword, 0))
	text := md.Text
	lo, hi = 0, len(text)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fits(&envelope.Markdown{Title: md.Title, Text: cut(text, mid)}) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	md.Text = cut(text, lo)
	if !fits(md) {
		return nil, fmt.Errorf("alertmanager: the title alone is too large for %s", size.Platform)
	}
	return md, nil
}

// cut returns the first n bytes of s (on a rune boundary) and "…".
func cut(s string, n int) string {
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
