package worker

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Components whose health the worker tracks.
const (
	componentLimiter     = "limiter"
	componentLedger      = "ledger"
	componentDeadLetters = "dead-letter stream"
)

// healthMemory is how long a component's failure counts without a newer
// one: a worker with no traffic makes no calls that could clear it.
const healthMemory = 30 * time.Second

// health remembers, per component, whether its last call failed, so
// readiness can say the worker is failing closed (an unreachable or
// out-of-memory Redis) instead of being silently stuck.
type health struct {
	mu   sync.Mutex
	errs map[string]healthErr
}

type healthErr struct {
	err   error
	since time.Time
	last  time.Time
}

func (h *health) failed(component string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.errs == nil {
		h.errs = map[string]healthErr{}
	}
	now := time.Now()
	if prev, ok := h.errs[component]; ok && now.Sub(prev.last) < healthMemory {
		h.errs[component] = healthErr{err: err, since: prev.since, last: now}
		return
	}
	h.errs[component] = healthErr{err: err, since: now, last: now}
}

func (h *health) ok(component string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.errs, component)
}

// Healthy reports nil when the last calls to the limiter, the ledger and
// the dead-letter stream succeeded (or failed longer than 30s ago with
// none since), else an error naming each failing one, since when, and its
// last error; an out-of-memory Redis is called so. cmd/worker's /readyz
// answers 503 with it.
func (w *Worker) Healthy() error {
	w.health.mu.Lock()
	defer w.health.mu.Unlock()
	var errs []error
	if !w.started.Load() {
		errs = append(errs, errStarting)
	}
	for _, c := range []string{componentLimiter, componentLedger, componentDeadLetters} {
		e, ok := w.health.errs[c]
		if !ok || time.Since(e.last) >= healthMemory {
			continue
		}
		what := "unavailable"
		if isOutOfMemory(e.err) {
			what = "refused by an out-of-memory Redis (maxmemory reached)"
		}
		errs = append(errs, fmt.Errorf("%s %s since %s (failing closed): %w", c, what, e.since.UTC().Format(time.RFC3339), e.err))
	}
	if err := w.noConsumer.err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// unservedSet is the robots no lane can serve, with why.
type unservedSet struct {
	mu sync.Mutex
	m  map[string]error
}

func (u *unservedSet) set(robot string, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]error{}
	}
	u.m[robot] = err
}

func (u *unservedSet) clear(robot string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.m, robot)
}

func (u *unservedSet) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.m)
}

// err names the unserved robots (the first 10, sorted) and the first's
// error, or nil.
func (u *unservedSet) err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.m) == 0 {
		return nil
	}
	names := make([]string, 0, len(u.m))
	for n := range u.m {
		names = append(names, n)
	}
	sort.Strings(names)
	shown := names[:min(len(names), 10)]
	more := ""
	if len(names) > len(shown) {
		more = fmt.Sprintf(" and %d more", len(names)-len(shown))
	}
	return fmt.Errorf("%d robots not served (no consumer): %s%s: %w", len(names), strings.Join(shown, ", "), more, u.m[names[0]])
}

// isOutOfMemory reports whether err is Redis refusing a write because it
// reached maxmemory (under noeviction).
func isOutOfMemory(err error) bool {
	return err != nil && strings.Contains(err.Error(), "OOM command not allowed")
}
