package ledger

import (
	"context"
	"sync"
	"time"
)

// Memory is an in-process [Ledger] and [Presence] for the demo and
// single-process use. Like [Redis] it forgets an entry [DefaultTTL] after
// its last change ([DefaultDoneTTL] once delivered), so its size follows
// the message rate, not the process's age.
type Memory struct {
	mu      sync.Mutex
	now     func() time.Time
	m       map[string]State
	expires map[string]time.Time
	ops     int
	members map[string]memMember // presence: worker -> its announcement
}

// NewMemory returns an empty in-process ledger on the system clock.
func NewMemory() *Memory { return NewMemoryClock(time.Now) }

// NewMemoryClock returns an empty in-process ledger whose leases follow now.
func NewMemoryClock(now func() time.Time) *Memory {
	return &Memory{now: now, m: make(map[string]State), expires: make(map[string]time.Time), members: make(map[string]memMember)}
}

// Get implements [Ledger].
func (l *Memory) Get(_ context.Context, key string) (State, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.get(key), nil
}

// get returns key's live state; l.mu is held.
func (l *Memory) get(key string) State {
	if exp, ok := l.expires[key]; ok && !l.now().Before(exp) {
		delete(l.m, key)
		delete(l.expires, key)
	}
	return l.m[key]
}

// put stores key's state with its TTL, and now and then drops every
// expired entry; l.mu is held.
func (l *Memory) put(key string, s State) {
	now := l.now()
	ttl := DefaultTTL
	if s.Delivered {
		ttl = DefaultDoneTTL
	}
	l.m[key], l.expires[key] = s, now.Add(ttl)
	if l.ops++; l.ops%1024 == 0 {
		for k, exp := range l.expires {
			if !now.Before(exp) {
				delete(l.m, k)
				delete(l.expires, k)
			}
		}
	}
}

// Len is the number of entries kept (expired ones may still count until
// the next sweep).
func (l *Memory) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// Claim implements [Ledger].
func (l *Memory) Claim(ctx context.Context, key, holder string, lease time.Duration, takeover bool) (Claim, State, error) {
	return l.ClaimMember(ctx, key, holder, "", lease, takeover)
}

// ClaimMember implements [MemberClaimer].
func (l *Memory) ClaimMember(_ context.Context, key, holder, member string, lease time.Duration, takeover bool) (Claim, State, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(key)
	now := l.now()
	c := decideClaim(s, holder, now, takeover)
	switch c {
	case Claimed:
		n := s
		n.Holder, n.HeldUntil = holder, now.Add(lease)
		if member != "" {
			n.Member = member
		}
		l.put(key, n)
	case AlreadyDelivered:
		l.put(key, s) // kept while its message is still read (see [ClaimLua])
	}
	return c, s, nil
}

// update applies f to key's state, clears holder's mark and returns the
// new state.
func (l *Memory) update(key, holder string, f func(*State)) State {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(key)
	f(&s)
	if s.Holder == holder {
		s.Holder, s.HeldUntil = "", time.Time{}
	}
	if s == (State{}) {
		delete(l.m, key) // as Redis drops an emptied hash
		delete(l.expires, key)
		return s
	}
	l.put(key, s)
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
