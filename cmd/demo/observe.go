package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/stream"
	"github.com/botrelay/botrelay/pkg/worker"
)

const timeRound = 100 * time.Millisecond

// narrator writes the demo's human-readable lines; it is safe for
// concurrent use. Quiet narrators print nothing but what print is given.
type narrator struct {
	mu    sync.Mutex
	w     io.Writer
	quiet bool
	start time.Time
}

func newNarrator(w io.Writer, quiet bool) *narrator {
	return &narrator{w: w, quiet: quiet, start: time.Now()}
}

// line prints one narrated line: elapsed time, who, what.
func (n *narrator) line(who, format string, args ...any) {
	if n.quiet {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.w, "[%5.1fs] %-12s %s\n", time.Since(n.start).Seconds(), who, fmt.Sprintf(format, args...))
}

// intro describes the set-up. Webhooks are shown redacted; secrets never.
func (n *narrator) intro(natsURL, simURL string, tm timing, sc *scenario) {
	if n.quiet {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.w, "botrelay demo: one process, nothing to install\n")
	fmt.Fprintf(n.w, "  NATS JetStream   embedded at %s (file storage in a temporary directory)\n", natsURL)
	fmt.Fprintf(n.w, "  robot simulator  %s: rate window %s, ban %s (the platforms' 1 min and 10 min, scaled)\n", simURL, tm.Window, tm.Ban)
	fmt.Fprintf(n.w, "  worker           in-process limiter and ledger; cool-off %s, retry backoff %s..%s\n",
		tm.CoolOff, tm.Backoff.Initial, tm.Backoff.Max)
	fmt.Fprintf(n.w, "robots (webhooks redacted; tokens and secrets are random and never shown):\n")
	for _, r := range sc.robots {
		if !r.Configured {
			fmt.Fprintf(n.w, "  %-12s %-9s %s\n", r.Name, "-", r.Note)
			continue
		}
		fmt.Fprintf(n.w, "  %-12s %-9s %s\n  %-22s webhook %s\n", r.Name, r.Platform, r.Note, "", delivery.Redact(r.webhook))
	}
	fmt.Fprintln(n.w)
}

// robotCounts is what the demo saw happen to one robot's messages.
type robotCounts struct {
	Published int
	// Waited counts the times a message was held by the rate limiter.
	Waited    int
	Retried   int
	Throttled int
	// Delivered and DeadLettered count the worker's events.
	Delivered    int
	DeadLettered int
	waiting      bool
}

// demo holds the state shared by the observers.
type demo struct {
	n  *narrator
	sc *scenario
	tm timing

	mu         sync.Mutex
	robots     map[string]*robotCounts
	lastResult map[string]delivery.Result // by envelope id
	throttled  map[string]bool            // envelope ids that were throttled
	total      int
	delivered  int
	dead       int
}

func newDemo(n *narrator, sc *scenario, tm timing) *demo {
	d := &demo{n: n, sc: sc, tm: tm, robots: map[string]*robotCounts{},
		lastResult: map[string]delivery.Result{}, throttled: map[string]bool{}}
	for _, r := range sc.robots {
		d.robots[r.Name] = &robotCounts{}
	}
	return d
}

func (d *demo) say(who, format string, args ...any) { d.n.line(who, format, args...) }

func (d *demo) elapsed() time.Duration { return time.Since(d.n.start) }

// counts returns robot's counters; d.mu held.
func (d *demo) counts(robot string) *robotCounts {
	c := d.robots[robot]
	if c == nil {
		c = &robotCounts{}
		d.robots[robot] = c
	}
	return c
}

func (d *demo) published(robot string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.counts(robot).Published++
	d.total++
}

func (d *demo) publishedTotal() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total
}

// progress returns how many messages were published and how many the
// worker delivered and dead-lettered.
func (d *demo) progress() (total, delivered, dead int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total, d.delivered, d.dead
}

// observe is the worker's Observe callback: it counts and narrates.
func (d *demo) observe(ev worker.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.counts(ev.Robot)
	switch ev.Kind {
	case "delivered":
		c.Delivered++
		d.delivered++
		switch {
		case d.throttled[ev.EnvelopeID]:
			d.say(ev.Robot, "delivered the throttled message after the cool-off: nothing lost")
		case ev.Attempts > 1:
			d.say(ev.Robot, "delivered on attempt %d", ev.Attempts)
		case c.Delivered == 1:
			d.say(ev.Robot, "first message delivered")
		}
	case "retry":
		c.Retried++
		d.say(ev.Robot, "attempt %d failed (%s): retryable, trying again after a backoff", ev.Attempts, describe(ev.Result))
	case "throttled":
		c.Throttled++
		d.throttled[ev.EnvelopeID] = true
		d.say(ev.Robot, "THROTTLED by the platform (%s): cooling off %s; the message waits, nothing is dropped",
			describe(ev.Result), d.tm.CoolOff)
	case "dead_letter":
		c.DeadLettered++
		d.dead++
		d.say(ev.Robot, "DEAD-LETTERED (%s): %s", ev.Reason, d.deadDetail(ev))
	}
}

// deadDetail explains a dead letter in a few words; d.mu held.
func (d *demo) deadDetail(ev worker.Event) string {
	switch deadletter.Reason(ev.Reason) {
	case deadletter.ReasonPermanent, deadletter.ReasonExhausted:
		if res, ok := d.lastResult[ev.EnvelopeID]; ok {
			return "the platform answered " + describe(res)
		}
	case deadletter.ReasonMissingKeyword:
		return "the content lacks the robot's keyword; refused without an HTTP request"
	case deadletter.ReasonDecode:
		return "the payload is not a valid envelope"
	case deadletter.ReasonUnknownRobot:
		return "no robot of that name is configured; swept from the stream"
	}
	return "see the dead letters below"
}

// describe summarizes a platform answer (no secrets: Results never hold one).
func describe(res delivery.Result) string {
	var parts []string
	if res.HTTPStatus != 0 && res.HTTPStatus != 200 {
		parts = append(parts, fmt.Sprintf("HTTP %d", res.HTTPStatus))
	}
	if res.ErrCode != 0 {
		parts = append(parts, fmt.Sprintf("errcode %d", res.ErrCode))
	}
	if res.Reason != "" && (len(parts) == 0 || res.Reason != parts[0]) {
		parts = append(parts, res.Reason)
	}
	if len(parts) == 0 {
		return res.Outcome.String()
	}
	return strings.Join(parts, ", ")
}

// onDecision sees every limiter decision: it counts and narrates the
// moments a robot's budget is used up.
func (d *demo) onDecision(robot string, lim limiter.Limit, dec limiter.Decision) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.counts(robot)
	switch {
	case dec.Allowed:
		c.waiting = false
	case dec.CoolingOff:
		// Narrated with the throttle.
	case !c.waiting:
		c.waiting = true
		c.Waited++
		// The window that is full is the one whose slot frees last: the
		// shortest one when its wait is shorter than itself.
		maxN, win, round := lim.Max, lim.Window, timeRound
		for _, a := range lim.Also {
			if dec.RetryAfter <= a.Window+lim.Margin {
				maxN, win, round = a.Max, a.Window, time.Millisecond
			}
		}
		d.say(robot, "rate-limited, waiting: %d sent in the last %s, the next slot is free in %s",
			maxN, win, dec.RetryAfter.Round(round))
	}
}

// countingLimiter is the worker's limiter, observed. The worker asks it by
// limiter key; the demo counts by robot name.
type countingLimiter struct {
	limiter.Limiter
	d *demo
}

// Reserve implements [limiter.Limiter].
func (l countingLimiter) Reserve(ctx context.Context, robot string, lim limiter.Limit) (limiter.Decision, error) {
	dec, err := l.Limiter.Reserve(ctx, robot, lim)
	if err == nil {
		l.d.onDecision(l.d.sc.nameOf(robot), lim, dec)
	}
	return dec, err
}

// recordingSender is the worker's sender, remembering each envelope's last
// answer so that a dead letter can be explained as it happens.
type recordingSender struct {
	worker.Sender
	d *demo
}

// Deliver implements [worker.Sender].
func (s recordingSender) Deliver(ctx context.Context, rb delivery.Robot, env *envelope.Envelope) delivery.Result {
	res := s.Sender.Deliver(ctx, rb, env)
	s.d.mu.Lock()
	s.d.lastResult[env.ID] = res
	s.d.mu.Unlock()
	return res
}

// waitSettled returns once every published message is settled: the worker
// reported it delivered or dead-lettered, and the outbound stream is empty.
// Every few seconds it narrates progress.
func (d *demo) waitSettled(ctx context.Context, js jetstream.JetStream, topo stream.Topology) error {
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	every := max(d.tm.Window/3, time.Second)
	lastReport := time.Now()
	lastSettled := -1
	for {
		total, delivered, dead := d.progress()
		settled := delivered + dead
		queued, err := outQueued(ctx, js, topo)
		if err == nil && settled >= total && queued == 0 {
			d.say("demo", "all %d messages settled", total)
			return nil
		}
		if time.Since(lastReport) >= every && settled != lastSettled {
			lastReport, lastSettled = time.Now(), settled
			d.say("progress", "%d/%d settled (%d delivered, %d dead-lettered), %d still in the stream",
				settled, total, delivered, dead, queued)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped before everything settled (not settled: %d of %d messages done, %d still in the stream): %w",
				settled, total, queued, ctx.Err())
		case <-poll.C:
		}
	}
}

// outQueued returns how many messages the outbound stream still holds
// (a work queue: a message leaves it when acked).
func outQueued(ctx context.Context, js jetstream.JetStream, topo stream.Topology) (uint64, error) {
	s, err := js.Stream(ctx, topo.OutStream())
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return 0, nil
		}
		return 0, fmt.Errorf("outbound stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("outbound stream info: %w", err)
	}
	return info.State.Msgs, nil
}
