package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/botrelay/botrelay/internal/fleet"
	"github.com/botrelay/botrelay/pkg/deadletter"
)

// pageData is what every template gets.
type pageData struct {
	Title  string
	Nav    string
	Error  string
	Auth   bool
	Fleet  *fleetView
	Dead   *deadView
	Detail *detailView
}

type fleetView struct {
	Query     Query
	Page      Page
	Snap      *Snapshot
	Platforms []string
	Sorts     []string
	Problems  int
	Charts    chartsJSON
	Prev      string
	Next      string
	SortLinks map[string]string
	Robot     string
}

type deadView struct {
	Values  url.Values
	Page    deadPage
	Reasons []deadletter.Reason
	Charts  chartsJSON
	Prev    string
	Next    string
	Filter  string // the filter as JSON for the page's script
}

type detailView struct {
	Entry   entryJSON
	Preview *preview
	JSON    string
}

// preview is a message as the platform would show it (markdown as its
// source text).
type preview struct {
	Platform string `json:"platform"`
	Kind     string `json:"kind"`
	Title    string `json:"title,omitempty"`
	Text     string `json:"text"`
}

// preview renders rec's envelope for its robot's platform: POPO shows plain
// text; DingTalk shows the title and the text or markdown.
func (s *Server) preview(rec deadletter.Record) *preview {
	env := rec.Envelope
	if env == nil {
		return nil
	}
	p := &preview{Platform: s.robots[rec.Robot].Platform, Kind: string(env.Message.Kind())}
	m := env.Message
	switch {
	case p.Platform == "popo":
		p.Text = m.PlainText()
	case m.Markdown != nil:
		p.Title, p.Text = m.Markdown.Title, m.Markdown.Text
	case m.Text != nil:
		p.Text = m.Text.Content
	default:
		p.Text = m.PlainText()
	}
	return p
}

var funcs = template.FuncMap{
	"dur": func(d time.Duration) string {
		if d <= 0 {
			return "–"
		}
		return fleet.CeilSec(d).String()
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return time.Since(t).Truncate(time.Second).String() + " ago"
	},
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"reasons": func(m map[deadletter.Reason]uint64) string {
		keys := slices.Sorted(maps.Keys(m))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %d", k, m[k])
		}
		return strings.Join(parts, ", ")
	},
	"bars":  bars,
	"short": func(s string, n int) string { return oneLine(s, n) },
}

// oneLine flattens s to one line of at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// chart is an SVG bar chart's geometry.
type chart struct {
	Bars  []bar
	Max   float64
	Total float64
	W, H  int
	From  string
	To    string
}

type bar struct {
	X, Y, W, H float64
	Label      string
}

// bars lays out points as a bar chart.
func bars(pts []Point, unit string) chart {
	c := chart{W: 600, H: 120}
	for _, p := range pts {
		c.Max = max(c.Max, p.Count)
		c.Total += p.Count
	}
	if len(pts) == 0 {
		return c
	}
	c.From, c.To = pts[0].At.UTC().Format("Jan 2 15:04"), pts[len(pts)-1].At.UTC().Format("Jan 2 15:04")
	w := float64(c.W) / float64(len(pts))
	for i, p := range pts {
		h := 0.0
		if c.Max > 0 {
			h = p.Count / c.Max * float64(c.H-10)
		}
		c.Bars = append(c.Bars, bar{X: float64(i)*w + 1, Y: float64(c.H) - h, W: max(w-2, 1), H: h,
			Label: fmt.Sprintf("%s: %g %s", p.At.UTC().Format("15:04"), p.Count, unit)})
	}
	return c
}

var pages = template.Must(template.New("").Funcs(funcs).ParseFS(assets, "assets/templates/*.html"))

// render writes the page called name.
func (s *Server) render(w http.ResponseWriter, name string, d pageData) {
	d.Auth = s.cfg.Token != ""
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, d); err != nil {
		s.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// with returns the URL path?v with key set to val ("" removes it).
func with(path string, v url.Values, kv ...string) string {
	c := url.Values{}
	for k, vs := range v {
		c[k] = slices.Clone(vs)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			c.Del(kv[i])
		} else {
			c.Set(kv[i], kv[i+1])
		}
	}
	if len(c) == 0 {
		return path
	}
	return path + "?" + c.Encode()
}

func (s *Server) pageFleet(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	d := pageData{Title: "Fleet", Nav: "fleet"}
	q, err := fleetQuery(v)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		d.Error = err.Error()
		s.render(w, "fleet", d)
		return
	}
	snap, err := s.snapshot(r.Context())
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		d.Error = err.Error()
		s.render(w, "fleet", d)
		return
	}
	fv := &fleetView{Query: q, Page: q.apply(snap.Rows), Snap: snap, Sorts: Sorts, SortLinks: map[string]string{}, Robot: v.Get("robot")}
	plats := map[string]bool{}
	for _, rb := range s.cfg.Robots {
		plats[rb.Platform] = true
	}
	fv.Platforms = slices.Sorted(maps.Keys(plats))
	for _, row := range snap.Rows {
		if len(row.Diagnoses) > 0 {
			fv.Problems++
		}
	}
	for _, k := range Sorts {
		desc := ""
		if q.Sort == k && !q.Desc {
			desc = "1"
		}
		fv.SortLinks[k] = with("/", v, "sort", k, "desc", desc, "page", "")
	}
	if q.Page > 1 {
		fv.Prev = with("/", v, "page", strconv.Itoa(q.Page-1))
	}
	if q.Page < fv.Page.Pages {
		fv.Next = with("/", v, "page", strconv.Itoa(q.Page+1))
	}
	fv.Charts = s.charts(snap, fv.Robot, time.Hour)
	d.Fleet = fv
	s.render(w, "fleet", d)
}

func (s *Server) pageDeadLetters(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	d := pageData{Title: "Dead letters", Nav: "dead"}
	dv := &deadView{Values: v, Reasons: deadletter.Reasons()}
	d.Dead = dv
	p, _, err := s.listDead(r.Context(), v)
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, deadletter.ErrInvalidFilter) {
			code = http.StatusBadRequest
		}
		w.WriteHeader(code)
		d.Error = err.Error()
		s.render(w, "deadletters", d)
		return
	}
	dv.Page = p
	dv.Filter = filterJSON(v)
	if p.Offset > 0 {
		dv.Prev = with("/deadletters", v, "offset", strconv.Itoa(max(0, p.Offset-p.Limit)))
	}
	if p.Offset+len(p.Entries) < p.Total {
		dv.Next = with("/deadletters", v, "offset", strconv.Itoa(p.Offset+p.Limit))
	}
	if snap, err := s.snapshot(r.Context()); err == nil {
		dv.Charts = s.charts(snap, v.Get("robot"), 24*time.Hour)
	}
	s.render(w, "deadletters", d)
}

func (s *Server) pageDeadLetter(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Dead letter " + r.PathValue("seq"), Nav: "dead"}
	e, code, err := s.getDead(r.Context(), r.PathValue("seq"))
	if err != nil {
		w.WriteHeader(code)
		d.Error = err.Error()
		s.render(w, "deadletter", d)
		return
	}
	ej := toEntryJSON(e)
	var b bytes.Buffer
	if env := e.Record.Envelope; env != nil {
		if data, err := json.MarshalIndent(env, "", "  "); err == nil {
			b.Write(data)
		}
	}
	d.Detail = &detailView{Entry: ej, Preview: s.preview(e.Record), JSON: b.String()}
	s.render(w, "deadletter", d)
}

func (s *Server) pageLogin(w http.ResponseWriter, _ *http.Request) {
	s.render(w, "login", pageData{Title: "Sign in"})
}

// filterJSON is the page's dead-letter filter as the body fields of a
// replay or delete, for the page's script.
func filterJSON(v url.Values) string {
	m := map[string]any{}
	for _, k := range []string{"robot", "reason", "since", "until", "q"} {
		if s := v.Get(k); s != "" {
			m[k] = s
		}
	}
	if n, err := strconv.Atoi(v.Get("errcode")); err == nil {
		m["errcode"] = n
	}
	if len(m) == 0 {
		m["all"] = true
	}
	b, _ := json.Marshal(m)
	return string(b)
}
