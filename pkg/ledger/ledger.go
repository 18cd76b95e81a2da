package ledger

import (
	"context"
	"errors"
	"time"
)

// DefaultTTL is how long an entry of a message still being worked on is
// kept after its last change. It must exceed the longest gap between two
// touches of a pending message (a retry backoff, a cool-off, a delayed
// redelivery, an AckWait): JetStream hands the message out again within
// that gap, and the entry is refreshed then. cmd/worker raises it for
// configurations with longer gaps.
const DefaultTTL = 30 * time.Minute

// DefaultDoneTTL is how long the entry of a delivered message is kept: long
// enough to catch a redelivery after a lost ack (one AckWait) and a
// producer's re-publish after JetStream's duplicate window (2 minutes by
// default). A message acked on a work-queue stream is gone for good, so a
// longer memory buys nothing.
const DefaultDoneTTL = 5 * time.Minute

// ErrUnavailable wraps errors of the backing store.
var ErrUnavailable = errors.New("ledger: store unavailable")

// State is what the ledger knows of one message.
type State struct {
	// Failures counts failed (retryable) delivery attempts.
	Failures int
	// FirstAttempt is when the first failed attempt was recorded; zero if none.
	FirstAttempt time.Time
	// Waits counts the times the message was handed back to JetStream to
	// wait (a rate slot, a cool-off, the platform's "later", a shutdown):
	// delayed redeliveries that are not attempts.
	Waits int
	// Waited is the time spent waiting since the first failed attempt
	// (rate slots, cool-offs, the platform's "later"): it does not count
	// against a retry budget measured in elapsed time.
	Waited time.Duration
	// Throttles counts the platform's throttles and requested waits for
	// this message.
	Throttles int
	// Delivered is true once a worker recorded the platform's success.
	Delivered bool
	// MessageID is the platform's message id, when it returned one.
	MessageID string
	// Permanent, when not empty, is the outcome of a permanent failure
	// recorded by [Ledger.MarkPermanent] (opaque to the ledger): the
	// message must not be posted again, only dead-lettered.
	Permanent string
	// Holder, when not empty, is the worker that marked the message in
	// flight ([Ledger.Claim]) and has not recorded an outcome since;
	// HeldUntil is the end of its lease (by the caller's clock in the
	// answer of [Ledger.Claim]; the store times leases by its own).
	Holder    string
	HeldUntil time.Time
	// Member is the pool member the last request of a pool message went
	// to, recorded by its claim ([MemberClaimer]); empty for other
	// messages. A worker that takes over a message whose holder died
	// (UnknownOutcome) posts it through the same member, whose platform
	// robot drops a repeat (DingTalk's msgUuid): another member would post
	// it twice in the group.
	Member string
}

// MemberClaimer is a [Ledger] whose claim can also record the pool member
// the request goes to (see [State.Member]); [Redis] and [Memory] are.
type MemberClaimer interface {
	// ClaimMember is [Ledger.Claim] recording member with the mark.
	ClaimMember(ctx context.Context, key, holder, member string, lease time.Duration, takeover bool) (Claim, State, error)
}

var (
	_ MemberClaimer = (*Redis)(nil)
	_ MemberClaimer = (*Memory)(nil)
)

// Claim is the answer to [Ledger.Claim].
type Claim int

const (
	// Claimed: the message is marked in flight by the caller; post it.
	Claimed Claim = iota + 1
	// AlreadyDelivered: a worker recorded its delivery; ack it.
	AlreadyDelivered
	// AlreadyPermanent: a worker recorded a permanent failure; dead-letter
	// it again without posting.
	AlreadyPermanent
	// HeldByOther: another worker marked it in flight and its lease has not
	// ended (it may be posting right now); wait until State.HeldUntil.
	HeldByOther
	// UnknownOutcome: another worker marked it in flight and its lease
	// ended without an outcome: it died, possibly after the platform took
	// the message. Claim again with takeover to post it anyway.
	UnknownOutcome
)

// String names the claim.
func (c Claim) String() string {
	switch c {
	case Claimed:
		return "claimed"
	case AlreadyDelivered:
		return "delivered"
	case AlreadyPermanent:
		return "permanent"
	case HeldByOther:
		return "held"
	case UnknownOutcome:
		return "unknown_outcome"
	}
	return "invalid"
}

// Ledger is safe for concurrent use. Keys are the caller's: the worker
// scopes them by robot ("<robot>/<id>"). Every recording call made by the
// holder of the in-flight mark also clears that mark.
type Ledger interface {
	// Get returns the state of key (the zero State when unknown).
	Get(ctx context.Context, key string) (State, error)
	// Claim is the check made immediately before every request: unless
	// key is delivered, permanent, or held by another holder (lease not
	// ended, or ended without an outcome unless takeover), it marks key in
	// flight by holder for lease. It returns the answer and the state
	// before the mark.
	Claim(ctx context.Context, key, holder string, lease time.Duration, takeover bool) (Claim, State, error)
	// Release clears holder's in-flight mark: the request was not made.
	Release(ctx context.Context, key, holder string) error
	// RecordFailure counts one failed attempt of key made at time at and
	// returns the new state.
	RecordFailure(ctx context.Context, key, holder string, at time.Time) (State, error)
	// RecordWait counts one hand-back of key to wait for d (a rate slot, a
	// cool-off, a shutdown); d is added to Waited once a failure was
	// recorded.
	RecordWait(ctx context.Context, key, holder string, d time.Duration) (State, error)
	// RecordThrottle counts one throttle (or platform-requested wait) of
	// key followed by a wait of d (added to Waited once a failure was
	// recorded), and returns the new state. It is not a hand-back: a worker
	// that hands the message back to wait records that with RecordWait.
	RecordThrottle(ctx context.Context, key, holder string, d time.Duration) (State, error)
	// MarkDelivered records that key was delivered; the entry is then kept
	// for the done TTL only.
	MarkDelivered(ctx context.Context, key, holder, messageID string) error
	// MarkPermanent records key's permanent failure (outcome is kept
	// opaque, for the dead letter); key is never posted again.
	MarkPermanent(ctx context.Context, key, holder, outcome string) error
}

// decideClaim is the claim rule shared by both ledgers.
func decideClaim(s State, holder string, now time.Time, takeover bool) Claim {
	switch {
	case s.Delivered:
		return AlreadyDelivered
	case s.Permanent != "":
		return AlreadyPermanent
	case s.Holder != "" && s.Holder != holder && now.Before(s.HeldUntil):
		return HeldByOther
	case s.Holder != "" && s.Holder != holder && !takeover:
		return UnknownOutcome
	}
	return Claimed
}
