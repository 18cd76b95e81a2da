package console

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/botrelay/botrelay/internal/fleet"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/limiter"
)

// Row is one line of the fleet view. Kind is "robot" today; pools and
// groups will be rows of their own kinds, aggregating their robots.
type Row struct {
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Platform string `json:"platform,omitempty"`
	// Configured is false for a robot JetStream knows but the
	// configuration does not.
	Configured bool `json:"configured"`
	// Limit is messages per Window (from the configuration).
	Limit    int           `json:"limit,omitempty"`
	Window   time.Duration `json:"window_ns,omitempty"`
	Backlog  uint64        `json:"backlog"`
	Pending  int           `json:"pending"`
	Redelive int           `json:"redelivered"`
	// Workers is how many workers wait for the robot's next message; -1
	// when the robot has no consumer (no worker ever served it).
	Workers    int       `json:"workers"`
	LastActive time.Time `json:"last_active,omitzero"`
	// The limiter's view; LimiterError says why it is unknown.
	InWindow     int           `json:"in_window"`
	NextSlot     time.Duration `json:"next_slot_ns"`
	CoolOffLeft  time.Duration `json:"cool_off_left_ns"`
	QuietLeft    time.Duration `json:"quiet_left_ns"`
	LimiterError string        `json:"limiter_error,omitempty"`
	// DeadLetters counts the robot's dead letters; ByReason splits those
	// read in the last scan by reason.
	DeadLetters uint64                       `json:"dead_letters"`
	ByReason    map[deadletter.Reason]uint64 `json:"dead_letters_by_reason,omitempty"`
	// Diagnoses are the lines "producer status" prints for the robot.
	Diagnoses []string `json:"diagnoses"`
}

// Snapshot is the fleet at one moment.
type Snapshot struct {
	At   time.Time `json:"at"`
	Rows []Row     `json:"-"`
	// Dead are the dead letters read (at most Config.MaxScan), for the
	// chart and the counts by reason; Truncated when there were more.
	Dead      []deadEntry `json:"-"`
	Truncated bool        `json:"dead_letters_truncated"`
	// Err is what could not be read (the rows may be partial).
	Err string `json:"error,omitempty"`
	// Deliveries are the workers' success counters over time (nil without
	// worker metrics).
	Deliveries []Sample `json:"-"`
}

// deadEntry is what the charts keep of a dead letter.
type deadEntry struct {
	Robot  string
	Reason deadletter.Reason
	At     time.Time
}

// inspectConcurrency bounds the limiter inspections in flight.
const inspectConcurrency = 16

// collect reads the fleet: queues from JetStream, the limiter for every
// robot, and the dead letters.
func (s *Server) collect(ctx context.Context) *Snapshot {
	snap := &Snapshot{At: s.now()}
	var errs []string
	queues, err := s.cfg.Topology.RobotStatus(ctx, s.cfg.JetStream)
	if err != nil {
		errs = append(errs, fmt.Sprintf("JetStream: %v", err))
	}
	names := map[string]bool{}
	for n := range queues {
		names[n] = true
	}
	for _, rb := range s.cfg.Robots {
		names[rb.Name] = true
	}
	rows := make([]Row, 0, len(names))
	for n := range names {
		q := queues[n]
		r := Row{Kind: "robot", Name: n, Backlog: q.Backlog, Pending: q.Pending, Redelive: q.Redelivered,
			Workers: q.Waiting, LastActive: q.LastActive, DeadLetters: q.DeadLetters}
		if !q.Consumer {
			r.Workers = -1
		}
		if rb, ok := s.robots[n]; ok {
			r.Configured, r.Platform, r.Limit, r.Window = true, rb.Platform, rb.Limit.Max, rb.Limit.Window
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b Row) int { return strings.Compare(a.Name, b.Name) })

	lims := s.inspect(ctx, rows)
	dead, truncated, err := s.scanDead(ctx)
	if err != nil {
		errs = append(errs, fmt.Sprintf("dead letters: %v", err))
	}
	byRobot := map[string]map[deadletter.Reason]uint64{}
	for _, d := range dead {
		m := byRobot[d.Robot]
		if m == nil {
			m = map[deadletter.Reason]uint64{}
			byRobot[d.Robot] = m
		}
		m[d.Reason]++
	}
	for i := range rows {
		r := &rows[i]
		r.ByReason = byRobot[r.Name]
		in := fleet.Input{Topology: s.cfg.Topology, Robot: r.Name, Queue: queues[r.Name], ConfigPath: s.cfg.ConfigName}
		configured := r.Configured
		in.Configured = &configured
		if l := lims[i]; l.err == nil && s.cfg.Limiter != nil {
			r.InWindow, r.NextSlot, r.CoolOffLeft, r.QuietLeft = l.st.InWindow, l.st.NextSlot, l.st.CoolOffLeft, l.st.QuietLeft
			in.Limiter = &fleet.Limiter{State: l.st, Limit: s.robots[r.Name].Limit, HasLimit: r.Configured}
		} else if l.err != nil {
			r.LimiterError = l.err.Error()
		}
		r.Diagnoses = fleet.Diagnose(in)
		if r.Diagnoses == nil {
			r.Diagnoses = []string{}
		}
	}
	snap.Rows, snap.Dead, snap.Truncated = rows, dead, truncated
	if len(errs) > 0 {
		snap.Err = strings.Join(errs, "; ")
	}
	return snap
}

type inspected struct {
	st  limiter.State
	err error
}

// inspect reads every row's limiter state with bounded concurrency. A
// robot outside the configuration is inspected with the default span (its
// cool-off and quiet time do not depend on the limit).
func (s *Server) inspect(ctx context.Context, rows []Row) []inspected {
	out := make([]inspected, len(rows))
	if s.cfg.Limiter == nil {
		return out
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, inspectConcurrency)
	for i := range rows {
		l := defaultSpan
		if rb, ok := s.robots[rows[i].Name]; ok {
			l = rb.Limit
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i].st, out[i].err = s.cfg.Limiter.Inspect(ctx, rows[i].Name, l)
		})
	}
	wg.Wait()
	return out
}

// defaultSpan is the limit used to inspect a robot the configuration does
// not know, as "producer status" does without --config.
var defaultSpan = limiter.Limit{Max: 1, Window: time.Minute, Margin: 5 * time.Second}

// scanDead reads up to MaxScan dead letters, newest kept when there are
// more.
func (s *Server) scanDead(ctx context.Context) ([]deadEntry, bool, error) {
	es, err := deadletter.List(ctx, s.cfg.JetStream, s.cfg.Topology, "", 0)
	if err != nil {
		return nil, false, err
	}
	truncated := false
	if len(es) > s.cfg.MaxScan {
		es, truncated = es[len(es)-s.cfg.MaxScan:], true
	}
	out := make([]deadEntry, len(es))
	for i, e := range es {
		out[i] = deadEntry{Robot: e.Record.Robot, Reason: e.Record.Reason, At: e.Record.DeadAt}
	}
	return out, truncated, nil
}

// Query selects, orders and pages the fleet's rows.
type Query struct {
	// Text matches a substring of the name (case-insensitive).
	Text string
	// Platform keeps one platform's robots; "" all.
	Platform string
	// Problems keeps the rows with a diagnosis.
	Problems bool
	// Sort is "problems" (default: rows with diagnoses first, then by
	// backlog and dead letters), "name", "backlog", "dead_letters",
	// "cool_off" or "last_active"; Desc reverses it.
	Sort string
	Desc bool
	// Page is 1-based; PerPage defaults to 50 (at most 500).
	Page, PerPage int
}

// Sorts are the accepted values of [Query.Sort].
var Sorts = []string{"problems", "name", "backlog", "dead_letters", "cool_off", "last_active"}

// Page is one page of rows.
type Page struct {
	Total   int   `json:"total"`
	Page    int   `json:"page"`
	PerPage int   `json:"per_page"`
	Pages   int   `json:"pages"`
	Rows    []Row `json:"robots"`
}

// normalize fills in defaults and checks q.
func (q *Query) normalize() error {
	if q.Sort == "" {
		q.Sort = "problems"
	}
	if !slices.Contains(Sorts, q.Sort) {
		return fmt.Errorf("sort %q: want one of %s", q.Sort, strings.Join(Sorts, ", "))
	}
	if q.PerPage <= 0 {
		q.PerPage = 50
	}
	q.PerPage = min(q.PerPage, 500)
	q.Page = max(q.Page, 1)
	return nil
}

// apply filters, sorts and pages rows (which it does not modify).
func (q Query) apply(rows []Row) Page {
	text := strings.ToLower(q.Text)
	sel := make([]Row, 0, len(rows))
	for _, r := range rows {
		if text != "" && !strings.Contains(strings.ToLower(r.Name), text) ||
			q.Platform != "" && r.Platform != q.Platform ||
			q.Problems && len(r.Diagnoses) == 0 {
			continue
		}
		sel = append(sel, r)
	}
	by := func(a, b Row) int {
		switch q.Sort {
		case "backlog":
			return cmp.Compare(b.Backlog, a.Backlog)
		case "dead_letters":
			return cmp.Compare(b.DeadLetters, a.DeadLetters)
		case "cool_off":
			return cmp.Compare(b.CoolOffLeft, a.CoolOffLeft)
		case "last_active":
			return b.LastActive.Compare(a.LastActive)
		case "problems":
			return cmp.Or(cmp.Compare(min(len(b.Diagnoses), 1), min(len(a.Diagnoses), 1)),
				cmp.Compare(b.Backlog, a.Backlog), cmp.Compare(b.DeadLetters, a.DeadLetters))
		}
		return 0
	}
	slices.SortStableFunc(sel, func(a, b Row) int {
		c := cmp.Or(by(a, b), strings.Compare(a.Name, b.Name))
		if q.Desc {
			return -c
		}
		return c
	})
	p := Page{Total: len(sel), Page: q.Page, PerPage: q.PerPage, Pages: max(1, (len(sel)+q.PerPage-1)/q.PerPage)}
	from := min((q.Page-1)*q.PerPage, len(sel))
	p.Rows = sel[from:min(from+q.PerPage, len(sel))]
	return p
}
