package limiter

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Memory is a [Limiter] held in process memory, with the same sliding-window
// log and cool-off semantics as [Redis]. It limits only the process that holds
// it: use it for a single worker, the demo, and tests of callers. Create it
// with [NewMemory]; it is safe for concurrent use.
//
// State of robots that have been idle for longer than their window (and whose
// cool-off has ended) is dropped as other robots are used, so idle robots cost
// nothing.
type Memory struct {
	clock func() time.Time

	mu     sync.Mutex
	robots map[string]*memRobot
	ops    int // decisions since the last sweep
	// quietUntil: nothing is granted before it (see [Memory.Quiet]).
	quietUntil time.Time

	// observe, when set (by tests), sees every decision with the clock time
	// at which it was made.
	observe func(robot string, d Decision, at time.Time)
}

type memRobot struct {
	log       []time.Time // grant times, ascending
	coolUntil time.Time   // cooling off while now < coolUntil
	idleAt    time.Time   // the state may be dropped from then on
}

var _ Limiter = (*Memory)(nil)

// minSweep is the fewest decisions between two sweeps of idle robots; a sweep
// happens after max(minSweep, robots) decisions, so its cost is amortised.
const minSweep = 64

// NewMemory returns an empty [Memory] reading time from clock (nil means
// time.Now).
func NewMemory(clock func() time.Time) *Memory {
	if clock == nil {
		clock = time.Now
	}
	return &Memory{clock: clock, robots: make(map[string]*memRobot)}
}

// Quiet makes m grant nothing for d from now, to any robot: the restart
// guard of a process that starts without knowing what it sent before (no
// state file, see [Memory.RestoreState]). Use the longest of the robots'
// Window+Margin and the platforms' cool-off. A quiet time never shortens
// one already set; d <= 0 does nothing.
func (m *Memory) Quiet(d time.Duration) {
	if d <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if until := m.clock().Add(d); until.After(m.quietUntil) {
		m.quietUntil = until
	}
}

// Reserve implements [Limiter]. Errors wrap [ErrInvalidLimit] or
// [ErrInvalidRobot]; with an error, the Decision is never Allowed.
func (m *Memory) Reserve(_ context.Context, robot string, l Limit) (Decision, error) {
	if _, err := checkLimit(l); err != nil {
		return Decision{}, fmt.Errorf("limiter: reserve %q: %w", robot, err)
	}
	if err := checkRobot(robot); err != nil {
		return Decision{}, fmt.Errorf("limiter: reserve: %w", err)
	}

	m.mu.Lock()
	now := m.clock()
	m.sweep(now)
	d := m.reserve(now, robot, l.windows())
	m.mu.Unlock()

	if m.observe != nil {
		m.observe(robot, d, now)
	}
	return d, nil
}

// reserve decides for robot at now under ws (the longest span first).
// m.mu is held.
func (m *Memory) reserve(now time.Time, robot string, ws []window) Decision {
	r := m.robots[robot]
	if r == nil {
		r = &memRobot{}
		m.robots[robot] = r
	}
	if now.Before(r.coolUntil) {
		return Decision{RetryAfter: r.coolUntil.Sub(now), CoolingOff: true}
	}
	if now.Before(m.quietUntil) {
		return Decision{RetryAfter: m.quietUntil.Sub(now)}
	}

	// A grant at t occupies [t, t+span): drop those with t <= now-span.
	span := ws[0].span
	cut := now.Add(-span)
	drop := sort.Search(len(r.log), func(i int) bool { return r.log[i].After(cut) })
	r.log = r.log[drop:] // append reallocates once the array is used up

	n := len(r.log)
	var retry time.Duration
	for _, w := range ws {
		// The grants within w are the newest c of the log.
		wcut := now.Add(-w.span)
		c := n - sort.Search(n, func(i int) bool { return r.log[i].After(wcut) })
		if c >= w.max {
			wait := r.log[n-w.max].Add(w.span).Sub(now)
			retry = max(retry, max(wait, 1))
		}
	}
	if retry > 0 {
		return Decision{RetryAfter: retry}
	}
	i := sort.Search(n, func(i int) bool { return r.log[i].After(now) })
	r.log = append(r.log, time.Time{})
	copy(r.log[i+1:], r.log[i:])
	r.log[i] = now
	if idle := now.Add(span); idle.After(r.idleAt) {
		r.idleAt = idle
	}
	return Decision{Allowed: true}
}

// CoolOff implements [Limiter]. A cool-off never shortens one already
// running; d <= 0 does nothing. Errors wrap [ErrInvalidRobot].
func (m *Memory) CoolOff(_ context.Context, robot string, d time.Duration) error {
	if err := checkRobot(robot); err != nil {
		return fmt.Errorf("limiter: cool off: %w", err)
	}
	if d <= 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.robots[robot]
	if r == nil {
		r = &memRobot{}
		m.robots[robot] = r
	}
	until := m.clock().Add(d)
	if until.After(r.coolUntil) {
		r.coolUntil = until
	}
	if until.After(r.idleAt) {
		r.idleAt = until
	}
	return nil
}

// sweep drops the state of idle robots every max(minSweep, robots)
// decisions. m.mu is held.
func (m *Memory) sweep(now time.Time) {
	m.ops++
	if m.ops < max(minSweep, len(m.robots)) {
		return
	}
	m.ops = 0
	for name, r := range m.robots {
		if !now.Before(r.idleAt) {
			delete(m.robots, name)
		}
	}
}

// robotCount reports how many robots have state (for tests).
func (m *Memory) robotCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.robots)
}
