package ledger

import (
	"context"
	"sync"
	"time"
)

// Memory is an in-process [Ledger] and [Presence] for the demo and
// single-process use. Entries are kept until the process ends.
type Memory struct {
	mu     sync.Mutex
	now    func() time.Time
	m      map[string]State
	served map[string]time.Time // robot -> announcement expiry
}

// NewMemory returns an empty in-process ledger on the system clock.
func NewMemory() *Memory { return NewMemoryClock(time.Now) }

// NewMemoryClock returns an empty in-process ledger whose leases follow now.
func NewMemoryClock(now func() time.Time) *Memory {
	return &Memory{now: now, m: make(map[string]State), served: make(map[string]time.Time)}
}

// Announce implements [Presence].
func (l *Memory) Announce(_ context.Context, robots []string, ttl time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	until := l.now().Add(ttl)
	for _, r := range robots {
		l.served[r] = until
	}
	return nil
}

// Served implements [Presence].
func (l *Memory) Served(_ context.Context, robot string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.now().Before(l.served[robot]), nil
}

// Get implements [Ledger].
func (l *Memory) Get(_ context.Context, key string) (State, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[key], nil
}

// Claim implements [Ledger].
func (l *Memory) Claim(_ context.Context, key, holder string, lease time.Duration, takeover bool) (Claim, State, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[key]
	now := l.now()
	c := decideClaim(s, holder, now, takeover)
	if c == Claimed {
		n := s
		n.Holder, n.HeldUntil = holder, now.Add(lease)
		l.m[key] = n
	}
	return c, s, nil
}

// update applies f to key's state, clears holder's mark and returns the
// new state.
func (l *Memory) update(key, holder string, f func(*State)) State {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[key]
	f(&s)
	if s.Holder == holder {
		s.Holder, s.HeldUntil = "", time.Time{}
	}
	l.m[key] = s
	return s
}

// Release implements [Ledger].
func (l *Memory) Release(_ context.Context, key, holder string) error {
	l.update(key, holder, func(*State) {})
	return nil
}

// RecordFailure implements [Ledger].
func (l *Memory) RecordFailure(_ context.Context, key, holder string, at time.Time) (State, error) {
	return l.update(key, holder, func(s *State) {
		s.Failures++
		if s.FirstAttempt.IsZero() {
			s.FirstAttempt = at
		}
	}), nil
}

// RecordWait implements [Ledger].
func (l *Memory) RecordWait(_ context.Context, key, holder string, d time.Duration) (State, error) {
	return l.update(key, holder, func(s *State) {
		s.Waits++
		if !s.FirstAttempt.IsZero() {
			s.Waited += max(d, 0).Truncate(time.Millisecond)
		}
	}), nil
}

// RecordThrottle implements [Ledger].
func (l *Memory) RecordThrottle(_ context.Context, key, holder string, d time.Duration) (State, error) {
	return l.update(key, holder, func(s *State) {
		s.Throttles++
		s.Waits++
		if !s.FirstAttempt.IsZero() {
			s.Waited += max(d, 0).Truncate(time.Millisecond)
		}
	}), nil
}

// MarkDelivered implements [Ledger].
func (l *Memory) MarkDelivered(_ context.Context, key, holder, messageID string) error {
	l.update(key, holder, func(s *State) { s.Delivered, s.MessageID = true, messageID })
	return nil
}

// MarkPermanent implements [Ledger].
func (l *Memory) MarkPermanent(_ context.Context, key, holder, outcome string) error {
	l.update(key, holder, func(s *State) { s.Permanent = outcome })
	return nil
}
