package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
)

// Summary is the outcome of one demo run.
type Summary struct {
	// Robots in the scenario's order.
	Robots []RobotSummary
	// DeadLetters as read back from the dead-letter stream.
	DeadLetters []deadletter.Entry
	// Published, Delivered and DeadLettered are the totals of the robots'.
	Published, Delivered, DeadLettered int
	// Lost sums, over the robots, the messages neither delivered nor
	// dead-lettered (or delivered twice).
	Lost int
	// UnexpectedBreaches counts limit breaches of robots other than the one
	// misconfigured on purpose.
	UnexpectedBreaches int
	// Elapsed is the time from the start to the last message settled.
	Elapsed time.Duration

	// secrets are the run's tokens and secrets, for tests that check none
	// was printed.
	secrets []string
}

// RobotSummary is what became of one robot's messages.
type RobotSummary struct {
	Name     string
	Platform string // "" for the unconfigured robot
	// Configured is false for the robot nobody knows.
	Configured bool
	// DeliberateBreach marks the robot whose limit is set too high on purpose.
	DeliberateBreach bool
	// WorkerLimit and PlatformLimit are the per-window budgets the worker
	// believes and the simulator enforces.
	WorkerLimit, PlatformLimit int
	// Published is the messages stored for it (malformed ones included).
	Published int
	// Delivered is the messages the simulated platform accepted.
	Delivered int
	// Requests is the HTTP requests the simulator received for it.
	Requests int
	// Waited counts the messages held back by the rate limiter.
	Waited int
	// Retried counts retryable failures; Throttled the platform's "send too
	// fast" answers (each started a cool-off).
	Retried, Throttled int
	// DeadLettered counts its dead letters by reason, as read back from
	// the dead-letter stream.
	DeadLettered map[deadletter.Reason]int
	// Breaches is the simulator's count of requests past the limit.
	Breaches int
}

// Dead returns the robot's dead letters of every reason.
func (r RobotSummary) Dead() int {
	n := 0
	for _, c := range r.DeadLettered {
		n += c
	}
	return n
}

// Robot returns the summary of the named robot, or nil.
func (s *Summary) Robot(name string) *RobotSummary {
	for i := range s.Robots {
		if s.Robots[i].Name == name {
			return &s.Robots[i]
		}
	}
	return nil
}

// summarize reads the outcome back: deliveries and breaches from the
// simulator, dead letters from their stream, the rest from the observers.
func (d *demo) summarize(ctx context.Context, js jetstream.JetStream, topo stream.Topology, sim *robotsim.Server) (*Summary, error) {
	dead, err := deadletter.List(ctx, js, topo, "", 0)
	if err != nil {
		return nil, fmt.Errorf("read the dead letters back: %w", err)
	}
	s := &Summary{DeadLetters: dead, Elapsed: d.elapsed(), secrets: d.sc.secrets()}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, spec := range d.sc.robots {
		c := d.counts(spec.Name)
		r := RobotSummary{Name: spec.Name, Platform: spec.Platform, Configured: spec.Configured,
			DeliberateBreach: spec.DeliberateBreach, WorkerLimit: spec.Limit, PlatformLimit: spec.SimLimit,
			Published: c.Published, Waited: c.Waited, Retried: c.Retried, Throttled: c.Throttled,
			DeadLettered: map[deadletter.Reason]int{}}
		if spec.Configured {
			st := sim.Stats(spec.token)
			r.Delivered, r.Requests, r.Breaches = len(sim.Received(spec.token)), st.Requests, st.Breaches
		}
		s.Robots = append(s.Robots, r)
	}
	for _, e := range dead {
		r := s.Robot(e.Record.Robot)
		if r == nil { // not one of ours; cannot happen on a fresh server
			s.Robots = append(s.Robots, RobotSummary{Name: e.Record.Robot, DeadLettered: map[deadletter.Reason]int{}})
			r = &s.Robots[len(s.Robots)-1]
		}
		r.DeadLettered[e.Record.Reason]++
	}
	for _, r := range s.Robots {
		s.Published += r.Published
		s.Delivered += r.Delivered
		s.DeadLettered += r.Dead()
		s.Lost += abs(r.Published - r.Delivered - r.Dead())
		if !r.DeliberateBreach {
			s.UnexpectedBreaches += r.Breaches
		}
	}
	return s, nil
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// check reports a lost or duplicated message and an unexpected breach.
func (s *Summary) check() error {
	var errs []error
	for _, r := range s.Robots {
		if got := r.Delivered + r.Dead(); got != r.Published {
			errs = append(errs, fmt.Errorf("robot %s: published %d, but delivered %d + dead-lettered %d = %d",
				r.Name, r.Published, r.Delivered, r.Dead(), got))
		}
		if r.Breaches > 0 && !r.DeliberateBreach {
			errs = append(errs, fmt.Errorf("robot %s: %d limit breach(es) at the platform", r.Name, r.Breaches))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("demo failed: %w", errors.Join(errs...))
	}
	return nil
}

// print writes the summary table, the dead letters and how to replay them.
func (s *Summary) print(w io.Writer, tm timing) {
	fmt.Fprintf(w, "\nSUMMARY (simulated window %s, ban %s; delivered = accepted by the simulator)\n", tm.Window, tm.Ban)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROBOT\tPLATFORM\tLIMIT worker/platform\tPUBLISHED\tDELIVERED\tHTTP REQS\tRATE WAITS\tRETRIED\tTHROTTLED\tDEAD-LETTERED\tBREACHES")
	for _, r := range s.Robots {
		platform, limits, delivered, reqs, breaches := "-", "-", "-", "-", "-"
		if r.Configured {
			platform = r.Platform
			limits = fmt.Sprintf("%d/%d", r.WorkerLimit, r.PlatformLimit)
			delivered, reqs, breaches = strconv.Itoa(r.Delivered), strconv.Itoa(r.Requests), strconv.Itoa(r.Breaches)
			if r.DeliberateBreach && r.Breaches > 0 {
				breaches += " (deliberate: answered by a cool-off)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", r.Name, platform, limits, r.Published,
			delivered, reqs, r.Waited, r.Retried, r.Throttled, reasons(r.DeadLettered), breaches)
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t%d\t%d\t\t\t\t\t%d\t%d unexpected\n", s.Published, s.Delivered, s.DeadLettered, s.UnexpectedBreaches)
	_ = tw.Flush()

	fmt.Fprintf(w, "\nDEAD LETTERS (read back with deadletter.List)\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tROBOT\tREASON\tERRCODE\tATTEMPTS\tDETAIL")
	for _, e := range s.DeadLetters {
		code := "-"
		if e.Record.ErrCode != 0 {
			code = strconv.Itoa(e.Record.ErrCode)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", e.Seq, e.Record.Robot, e.Record.Reason, code,
			e.Record.Attempts, shorten(e.Record.Detail, 80))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nTo replay a dead letter once its cause is fixed (the demo's server is gone when it exits;\n"+
		"against a running deployment):\n  go run ./cmd/producer dlq list\n  go run ./cmd/producer dlq replay <seq>\n")
	if seq, ok := s.replayExample(); ok {
		fmt.Fprintf(w, "e.g. after fixing %s's secret: go run ./cmd/producer dlq replay %d\n", robotBadSig, seq)
	}

	verdict := "OK: nothing lost"
	if err := s.check(); err != nil {
		verdict = "FAILED: " + strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	fmt.Fprintf(w, "\n%d messages settled in %s: %d delivered, %d dead-lettered, %d lost; %d unexpected breach(es). %s\n",
		s.Published, s.Elapsed.Round(timeRound), s.Delivered, s.DeadLettered, s.Lost, s.UnexpectedBreaches, verdict)
}

// replayExample returns the sequence of a dead letter worth replaying.
func (s *Summary) replayExample() (uint64, bool) {
	for _, e := range s.DeadLetters {
		if e.Record.Robot == robotBadSig && e.Record.Envelope != nil {
			return e.Seq, true
		}
	}
	return 0, false
}

// reasons formats counts by reason: "2 permanent, 1 decode" or "0".
func reasons(m map[deadletter.Reason]int) string {
	if len(m) == 0 {
		return "0"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
	}
	return strings.Join(parts, ", ")
}

// shorten cuts s to n runes with an ellipsis.
func shorten(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
