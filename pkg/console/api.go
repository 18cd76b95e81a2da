package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/deadletter"
)

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError answers {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// fleetQuery reads a [Query] from URL parameters q, platform, problems,
// sort, desc, page and per_page.
func fleetQuery(v url.Values) (Query, error) {
	q := Query{Text: v.Get("q"), Platform: v.Get("platform"), Sort: v.Get("sort"),
		Problems: v.Get("problems") == "1" || v.Get("problems") == "true", Desc: v.Get("desc") == "1" || v.Get("desc") == "true"}
	var err error
	if q.Page, err = intParam(v, "page"); err != nil {
		return q, err
	}
	if q.PerPage, err = intParam(v, "per_page"); err != nil {
		return q, err
	}
	return q, q.normalize()
}

func intParam(v url.Values, name string) (int, error) {
	s := v.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s %q: want a non-negative integer", name, s)
	}
	return n, nil
}

// robotsAnswer is GET /api/v1/robots.
type robotsAnswer struct {
	Page
	RefreshedAt time.Time `json:"refreshed_at"`
	Error       string    `json:"error,omitempty"`
}

func (s *Server) apiRobots(w http.ResponseWriter, r *http.Request) {
	q, err := fleetQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	snap, err := s.snapshot(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, robotsAnswer{Page: q.apply(snap.Rows), RefreshedAt: snap.At, Error: snap.Err})
}

// entryJSON is a dead letter in the API: its sequence, the record, and the
// raw payload as text when it is valid UTF-8.
type entryJSON struct {
	Seq     uint64            `json:"seq"`
	Record  deadletter.Record `json:"record"`
	RawText string            `json:"raw_text,omitempty"`
}

func toEntryJSON(e deadletter.Entry) entryJSON {
	out := entryJSON{Seq: e.Seq, Record: e.Record}
	if len(e.Record.Raw) > 0 && utf8.Valid(e.Record.Raw) {
		out.RawText = string(e.Record.Raw)
	}
	return out
}

// deadFilter reads a [deadletter.Filter] from URL parameters robot,
// reason, errcode, since, until and q.
func (s *Server) deadFilter(v url.Values) (deadletter.Filter, error) {
	return deadletter.ParseFilter(v.Get("robot"), v.Get("reason"), v.Get("errcode"), v.Get("since"), v.Get("until"), v.Get("q"), s.now())
}

// deadPage is one page of matching dead letters, newest first.
type deadPage struct {
	Total   int         `json:"total"`
	Offset  int         `json:"offset"`
	Limit   int         `json:"limit"`
	Entries []entryJSON `json:"entries"`
}

// listDead returns the page of dead letters matching the URL's filter.
func (s *Server) listDead(ctx context.Context, v url.Values) (deadPage, deadletter.Filter, error) {
	f, err := s.deadFilter(v)
	if err != nil {
		return deadPage{}, f, err
	}
	off, err := intParam(v, "offset")
	if err != nil {
		return deadPage{}, f, err
	}
	limit, err := intParam(v, "limit")
	if err != nil {
		return deadPage{}, f, err
	}
	if limit == 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	es, err := deadletter.ListFiltered(ctx, s.cfg.JetStream, s.cfg.Topology, f, 0)
	if err != nil {
		return deadPage{}, f, fmt.Errorf("read dead letters: %w", err)
	}
	p := deadPage{Total: len(es), Offset: off, Limit: limit, Entries: []entryJSON{}}
	// Newest first: index from the end.
	for i := len(es) - 1 - off; i >= 0 && len(p.Entries) < limit; i-- {
		p.Entries = append(p.Entries, toEntryJSON(es[i]))
	}
	return p, f, nil
}

func (s *Server) apiDeadLetters(w http.ResponseWriter, r *http.Request) {
	p, _, err := s.listDead(r.Context(), r.URL.Query())
	switch {
	case errors.Is(err, deadletter.ErrInvalidFilter):
		writeError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		writeError(w, http.StatusBadGateway, err.Error())
	default:
		writeJSON(w, http.StatusOK, p)
	}
}

// detailJSON is GET /api/v1/deadletters/{seq}: the entry and how the
// platform would show its message.
type detailJSON struct {
	entryJSON
	Preview *preview `json:"preview,omitempty"`
}

func (s *Server) getDead(ctx context.Context, seqText string) (deadletter.Entry, int, error) {
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil || seq == 0 {
		return deadletter.Entry{}, http.StatusBadRequest, fmt.Errorf("%q is not a sequence number", seqText)
	}
	e, err := deadletter.Get(ctx, s.cfg.JetStream, s.cfg.Topology, seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return e, http.StatusNotFound, fmt.Errorf("no dead letter with sequence %d", seq)
	case err != nil:
		return e, http.StatusBadGateway, err
	}
	return e, http.StatusOK, nil
}

func (s *Server) apiDeadLetter(w http.ResponseWriter, r *http.Request) {
	e, code, err := s.getDead(r.Context(), r.PathValue("seq"))
	if err != nil {
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, detailJSON{entryJSON: toEntryJSON(e), Preview: s.preview(e.Record)})
}

// chartsJSON is GET /api/v1/charts.
type chartsJSON struct {
	Robot       string        `json:"robot,omitempty"`
	StepSeconds float64       `json:"step_seconds"`
	DeadLetters []Point       `json:"dead_letters"`
	Deliveries  []Point       `json:"deliveries"`
	Span        time.Duration `json:"span_ns"`
}

// chartSpan reads span (default 24h) from the URL.
func chartSpan(v url.Values) (time.Duration, error) {
	s := v.Get("span")
	if s == "" {
		return 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Minute || d > 30*24*time.Hour {
		return 0, fmt.Errorf("span %q: want a duration from 1m to 720h", s)
	}
	return d, nil
}

// chartBars is the number of bars of the dead-letter chart.
const chartBars = 48

func (s *Server) charts(snap *Snapshot, robot string, span time.Duration) chartsJSON {
	return chartsJSON{Robot: robot, Span: span, StepSeconds: (span / chartBars).Seconds(),
		DeadLetters: deadSeries(snap.Dead, robot, s.now(), span, chartBars),
		Deliveries:  append([]Point{}, deliveries(snap.Deliveries, robot)...)}
}

func (s *Server) apiCharts(w http.ResponseWriter, r *http.Request) {
	span, err := chartSpan(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	snap, err := s.snapshot(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.charts(snap, r.URL.Query().Get("robot"), span))
}

// selection is the body of the mutating calls: either seqs, or a filter
// (robot, reason, errcode, since, until, q), or all.
type selection struct {
	Seqs    []uint64 `json:"seqs"`
	Robot   string   `json:"robot"`
	Reason  string   `json:"reason"`
	ErrCode *int     `json:"errcode"`
	Since   string   `json:"since"`
	Until   string   `json:"until"`
	Q       string   `json:"q"`
	All     bool     `json:"all"`
	DryRun  bool     `json:"dry_run"`
	// Delete, for a replay, deletes each dead letter once replayed.
	Delete bool `json:"delete"`
}

// maxBody bounds a mutating call's body.
const maxBody = 1 << 20

// decodeSelection reads the body and resolves it to sequence numbers.
func (s *Server) decodeSelection(w http.ResponseWriter, r *http.Request) (selection, []uint64, bool) {
	var sel selection
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sel); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return sel, nil, false
	}
	errcode := ""
	if sel.ErrCode != nil {
		errcode = strconv.Itoa(*sel.ErrCode)
	}
	f, err := deadletter.ParseFilter(sel.Robot, sel.Reason, errcode, sel.Since, sel.Until, sel.Q, s.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return sel, nil, false
	}
	switch {
	case len(sel.Seqs) > 0 && (!f.IsZero() || sel.All):
		writeError(w, http.StatusBadRequest, "give seqs or a filter (or all), not both")
		return sel, nil, false
	case len(sel.Seqs) > 0:
		for _, n := range sel.Seqs {
			if n == 0 {
				writeError(w, http.StatusBadRequest, "seqs: 0 is not a sequence number")
				return sel, nil, false
			}
		}
		return sel, sel.Seqs, true
	case f.IsZero() && !sel.All:
		writeError(w, http.StatusBadRequest, `give seqs, a filter, or "all": true`)
		return sel, nil, false
	}
	es, err := deadletter.ListFiltered(r.Context(), s.cfg.JetStream, s.cfg.Topology, f, 0)
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return sel, nil, false
	}
	seqs := make([]uint64, len(es))
	for i, e := range es {
		seqs[i] = e.Seq
	}
	return sel, seqs, true
}

// Statuses of one dead letter in an [actionAnswer].
const (
	StatusReplayed        = "replayed"
	StatusWouldReplay     = "would_replay"
	StatusAlreadyReplayed = "already_replayed"
	StatusNotReplayable   = "not_replayable"
	StatusDeleted         = "deleted"
	StatusWouldDelete     = "would_delete"
	StatusNotFound        = "not_found"
	StatusFailed          = "failed"
)

// actionItem is what happened (or would happen) to one dead letter.
type actionItem struct {
	Seq    uint64 `json:"seq"`
	Status string `json:"status"`
	ID     string `json:"id,omitempty"`
	Robot  string `json:"robot,omitempty"`
	Error  string `json:"error,omitempty"`
}

// actionAnswer is the answer of a replay or delete.
type actionAnswer struct {
	DryRun  bool           `json:"dry_run"`
	Matched int            `json:"matched"`
	Counts  map[string]int `json:"counts"`
	Items   []actionItem   `json:"items"`
}

func (a *actionAnswer) add(it actionItem) {
	a.Items = append(a.Items, it)
	a.Counts[it.Status]++
}

func (s *Server) apiReplay(w http.ResponseWriter, r *http.Request) {
	sel, seqs, ok := s.decodeSelection(w, r)
	if !ok {
		return
	}
	ans := actionAnswer{DryRun: sel.DryRun, Matched: len(seqs), Counts: map[string]int{}, Items: []actionItem{}}
	ctx := r.Context()
	for _, seq := range seqs {
		if sel.DryRun {
			e, err := deadletter.Get(ctx, s.cfg.JetStream, s.cfg.Topology, seq)
			it := actionItem{Seq: seq, Robot: e.Record.Robot}
			switch {
			case errors.Is(err, jetstream.ErrMsgNotFound):
				it.Status = StatusNotFound
			case err != nil:
				it.Status, it.Error = StatusFailed, err.Error()
			case e.Record.Envelope == nil:
				it.Status = StatusNotReplayable
			default:
				it.Status, it.ID = StatusWouldReplay, e.Record.Envelope.ID
			}
			ans.add(it)
			continue
		}
		e, err := deadletter.Replay(ctx, s.cfg.JetStream, s.cfg.Topology, seq, sel.Delete)
		it := actionItem{Seq: seq, Robot: e.Record.Robot}
		if e.Record.Envelope != nil {
			it.ID = e.Record.Envelope.ID
		}
		switch {
		case errors.Is(err, deadletter.ErrAlreadyReplayed):
			it.Status = StatusAlreadyReplayed
		case errors.Is(err, deadletter.ErrNotReplayable):
			it.Status = StatusNotReplayable
		case errors.Is(err, jetstream.ErrMsgNotFound):
			it.Status = StatusNotFound
		case err != nil:
			it.Status, it.Error = StatusFailed, err.Error()
		default:
			it.Status = StatusReplayed
		}
		ans.add(it)
	}
	if !sel.DryRun {
		s.log.Info("dead letters replayed", "matched", ans.Matched, "replayed", ans.Counts[StatusReplayed],
			"already_replayed", ans.Counts[StatusAlreadyReplayed], "failed", ans.Counts[StatusFailed])
		s.requestRefresh()
	}
	writeJSON(w, http.StatusOK, ans)
}

func (s *Server) apiDelete(w http.ResponseWriter, r *http.Request) {
	sel, seqs, ok := s.decodeSelection(w, r)
	if !ok {
		return
	}
	if sel.Delete {
		writeError(w, http.StatusBadRequest, `"delete" belongs to a replay`)
		return
	}
	ans := actionAnswer{DryRun: sel.DryRun, Matched: len(seqs), Counts: map[string]int{}, Items: []actionItem{}}
	ctx := r.Context()
	str, err := s.cfg.JetStream.Stream(ctx, s.cfg.Topology.DLQStream())
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	for _, seq := range seqs {
		e, err := deadletter.Get(ctx, s.cfg.JetStream, s.cfg.Topology, seq)
		it := actionItem{Seq: seq, Robot: e.Record.Robot}
		if e.Record.Envelope != nil {
			it.ID = e.Record.Envelope.ID
		}
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			it.Status = StatusNotFound
		case err != nil:
			it.Status, it.Error = StatusFailed, err.Error()
		case sel.DryRun:
			it.Status = StatusWouldDelete
		default:
			if err := str.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				it.Status, it.Error = StatusFailed, err.Error()
			} else if err != nil {
				it.Status = StatusNotFound
			} else {
				it.Status = StatusDeleted
			}
		}
		ans.add(it)
	}
	if !sel.DryRun {
		s.log.Info("dead letters deleted", "matched", ans.Matched, "deleted", ans.Counts[StatusDeleted])
		s.requestRefresh()
	}
	writeJSON(w, http.StatusOK, ans)
}
