package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/ledger"
)

// Direct lanes (the default; [Config.ConsumerLanes] turns them off) serve
// a robot without a consumer: the lane reads the first message of the
// robot's subject still in the outbound stream (the direct-get API on a
// single-replica stream, the message-get API, answered by the leader, on a
// replicated one: see Topology.Ensure in pkg/stream), handles it as a
// consumer's lane would, and deletes it once settled. On a
// work-queue stream every consumer costs the server on every message, and
// a fan-out to thousands of robots costs a consumer creation and deletion
// each; a get and a delete cost the same at 500 robots as at 2,000
// (docs/design/fleet.md, "Direct lanes").
//
// What a consumer gave, the lane and the ledger give instead:
//   - Per-robot order: a lane only ever handles the first message of its
//     robot, and a message leaves the stream only after its outcome is
//     recorded, so no later message can be posted before it.
//   - One worker at a time per message: the ledger's claim (two lanes on
//     one robot, a rescue lane beside its owner, both see the first
//     message; the one without the claim waits, and finds it delivered).
//   - Delayed redelivery: a retry's backoff or a wait is slept by the lane
//     itself (the message stays first in the stream), under a wait mark
//     in the ledger ([waitMark]) that holds every other lane off until it
//     is due; a lane that stops meanwhile (shutdown, reload, ownership)
//     leaves the message to the next lane, which takes it up then.
//   - A message held by a worker that died is not held back for AckWait:
//     its claim's lease ends and the next lane takes it up; the repost
//     spends an attempt ([Worker.countRepost]), as there is no delivery
//     count to bound a message that kills every worker taking it.

// directMsg is a message read from the stream by a direct lane, in the
// shape [Worker.handle] takes: acknowledging deletes it from the stream,
// handing it back only tells the lane when to read it again.
type directMsg struct {
	raw *jetstream.RawStreamMsg
	st  jetstream.Stream
	md  jetstream.MsgMetadata

	mu sync.Mutex
	// settled: acknowledged or terminated (deleted, or the delete failed,
	// ackErr: the lane reads it again and the ledger has it settled);
	// delay: when handed back, how long until it is due again; waitKey:
	// the ledger key whose wait mark ([waitMark]) this worker set for the
	// delay.
	settled bool
	ackErr  error
	delay   time.Duration
	waitKey string
}

// waitMark is appended to a worker's holder name for the in-flight mark a
// direct lane sets in the ledger while the message it handed back waits
// (a retry's backoff, a cool-off, the platform's "later"): every other
// lane's claim is then answered "held" until it is due, so no other worker
// (a rescue lane, a new owner) posts it early. The mark's lease is the
// delay; a lease that ended is no unknown outcome (nothing was being
// posted under it), see [policy.before].
const waitMark = "#wait"

// directOpTimeout bounds a direct lane's get or delete.
const directOpTimeout = 5 * time.Second

func (m *directMsg) Metadata() (*jetstream.MsgMetadata, error) {
	md := m.md
	return &md, nil
}
func (m *directMsg) Data() []byte                { return m.raw.Data }
func (m *directMsg) Headers() nats.Header        { return m.raw.Header }
func (m *directMsg) Subject() string             { return m.raw.Subject }
func (m *directMsg) Reply() string               { return "" }
func (m *directMsg) InProgress() error           { return nil } // no AckWait: nothing to extend
func (m *directMsg) Term() error                 { return m.Ack() }
func (m *directMsg) TermWithReason(string) error { return m.Ack() }

// Ack deletes the message from the stream. A message already gone
// (deleted by another lane that settled it too) is no error.
func (m *directMsg) Ack() error {
	ctx, cancel := context.WithTimeout(context.Background(), directOpTimeout)
	defer cancel()
	err := m.st.DeleteMsg(ctx, m.raw.Sequence)
	if err != nil && isMsgGone(err) {
		err = nil
	}
	if err != nil {
		err = fmt.Errorf("delete message %d: %w", m.raw.Sequence, err)
	}
	m.mu.Lock()
	m.settled, m.ackErr = true, err
	m.mu.Unlock()
	return err
}

func (m *directMsg) DoubleAck(context.Context) error { return m.Ack() }

// Nak hands the message back to be read again at once.
func (m *directMsg) Nak() error { return m.NakWithDelay(0) }

// NakWithDelay hands the message back to be read again after d.
func (m *directMsg) NakWithDelay(d time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.delay = max(d, 0)
	return nil
}

func (m *directMsg) outcome() (settled bool, ackErr error, delay time.Duration, waitKey string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.settled, m.ackErr, m.delay, m.waitKey
}

// holdFor sets j's wait mark for d, when j is a direct lane's message
// handed back for later: see [waitMark]. A ledger error only loses the
// mark (another lane may then post it before it is due).
func (w *Worker) holdFor(ctx context.Context, j *job, d time.Duration) {
	m, ok := j.msg.(*directMsg)
	if !ok || j.key == "" || !j.ledgerOK || d <= 0 {
		return
	}
	if _, _, err := w.cfg.Ledger.Claim(ctx, j.key, w.holder+waitMark, d, true); !w.ledgerResult(err, j.rb, j.id(), "marking the wait of") {
		return
	}
	m.mu.Lock()
	m.waitKey = j.key
	m.mu.Unlock()
}

// isMsgGone reports whether a delete failed because the message is no
// longer in the stream. nats.go flattens the server's answer into the
// text of ErrMsgDeleteUnsuccessful, so the text tells: "err_code=10043
// description=sequence N not found" (nats-server 2.9 always, 2.15 for a
// message between others) or "err_code=10057 description=no message
// found" (2.15, the stream's last message). Two lanes that settled one
// message both delete it: in a saturation run of bench-scale ~15,000 times
// in two minutes, each taken for a failed delete (and backed off) while
// only 10057 was recognised.
func isMsgGone(err error) bool {
	if !errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		return false
	}
	text := err.Error()
	return strings.Contains(text, "err_code=10057") || strings.Contains(text, "err_code=10043")
}

// outStream returns the outbound stream's handle, read once.
func (w *Worker) outStream(ctx context.Context) (jetstream.Stream, error) {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	if w.out != nil {
		return w.out, nil
	}
	sctx, cancel := context.WithTimeout(ctx, directOpTimeout)
	defer cancel()
	st, err := w.js.Stream(sctx, w.cfg.Topology.OutStream())
	if err != nil {
		return nil, fmt.Errorf("outbound stream %s: %w", w.cfg.Topology.OutStream(), err)
	}
	w.out = st
	return st, nil
}

// first reads the first message of robot's subject still in the stream.
func (w *Worker) first(ctx context.Context, robot string) (*directMsg, error) {
	st, err := w.outStream(ctx)
	if err != nil {
		return nil, err
	}
	gctx, cancel := context.WithTimeout(ctx, directOpTimeout)
	defer cancel()
	raw, err := st.GetMsg(gctx, 0, jetstream.WithGetMsgSubject(w.cfg.Topology.OutSubject(robot)))
	if err != nil {
		return nil, err
	}
	return &directMsg{raw: raw, st: st, md: jetstream.MsgMetadata{
		Sequence:  jetstream.SequencePair{Stream: raw.Sequence},
		Timestamp: raw.Time, Stream: w.cfg.Topology.OutStream(), NumDelivered: 1,
	}}, nil
}

// directLane serves robot l.robot by direct reads (see above) until ctx is
// done, the robot is no longer this worker's, it is idle for LaneIdle, or
// a reload made it a digest robot (switch reports that: the caller's
// consumer lane takes over).
func (w *Worker) directLane(ctx context.Context, l *laneState) (switched bool) {
	name := l.robot
	lastMsg := time.Now()
	var headSeq, headTaken uint64     // how often this lane took the first message
	errWait := 100 * time.Millisecond // after a failed read
	delWait := 100 * time.Millisecond // after a failed delete: reset only by a clean one
	for ctx.Err() == nil {
		rb, ok := w.servable(name, l.rescue)
		if !ok {
			return false
		}
		if rb.Digest != nil {
			return true
		}
		// An announcement from now on is of a message this read may miss.
		select {
		case <-l.wake:
		default:
		}
		m, err := w.first(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			if !errors.Is(err, jetstream.ErrMsgNotFound) {
				w.log.Warn("could not read the robot's next message", "robot", name, "err", err, "retry_in", errWait)
				sleep(ctx, errWait)
				errWait = min(2*errWait, 5*time.Second)
				continue
			}
			errWait = 100 * time.Millisecond
			if time.Since(lastMsg) >= w.cfg.LaneIdle && w.stopLane(l, false) {
				return false
			}
			// Nothing now: wait for an announcement, or look again after
			// FetchWait (an announcement may be lost).
			t := time.NewTimer(w.cfg.FetchWait)
			select {
			case <-ctx.Done():
			case <-l.wake: // the next read sees the announced message
			case <-t.C:
			}
			t.Stop()
			continue
		}
		errWait = 100 * time.Millisecond
		// The configuration of now, not of when the read began (a reload).
		if rb, ok = w.servable(name, l.rescue); !ok {
			return false
		}
		if rb.Digest != nil {
			return true
		}
		if m.raw.Sequence == headSeq {
			headTaken++
		} else {
			headSeq, headTaken = m.raw.Sequence, 1
		}
		m.md.NumDelivered = headTaken
		w.handle(ctx, rb, m, nil, w.cfg.AckWait, nil)
		lastMsg = time.Now()
		settled, ackErr, delay, waitKey := m.outcome()
		switch {
		case settled && ackErr != nil:
			// Settled in the ledger but still in the stream (JetStream
			// down, or no permission to delete): the next read finds it
			// settled; not at once, in a loop.
			w.log.Warn("could not delete a settled message from the stream; reading it again later", "robot", name, "err", ackErr, "retry_in", delWait)
			sleep(ctx, delWait)
			delWait = min(2*delWait, 30*time.Second)
		case settled:
			delWait = 100 * time.Millisecond
		case !settled && delay > 0:
			// Handed back for later: it stays first in the stream; the
			// lane sleeps until it is due (stopping meanwhile leaves it to
			// the next lane, which the wait mark holds off until then).
			if !w.sleepServable(ctx, name, l.rescue, delay) {
				return false
			}
			if waitKey != "" {
				rctx, cancel := context.WithTimeout(ctx, directOpTimeout)
				w.ledgerResult(w.cfg.Ledger.Release(rctx, waitKey, w.holder+waitMark), rb, "", "clearing the wait mark of")
				cancel()
			}
			lastMsg = time.Now()
		}
	}
	return false
}

// sleepServable sleeps for d, waking every FetchWait to check that robot
// is still this worker's; it reports whether it slept the whole d.
func (w *Worker) sleepServable(ctx context.Context, robot string, rescue bool, d time.Duration) bool {
	until := time.Now().Add(d)
	for {
		left := time.Until(until)
		if left <= 0 {
			return true
		}
		if !sleep(ctx, min(left, w.cfg.FetchWait)) {
			return false
		}
		if _, ok := w.servable(robot, rescue); !ok {
			return false
		}
	}
}

// expiredElsewhere is asked before an expired message is dead-lettered:
// a direct lane's message may be one another lane is posting right now
// (both read the robot's first message), which must not be dead-lettered
// and deleted under it, nor the robot's next message posted before it. A
// claim tells: held by another lane, it waits (ok); settled meanwhile, it
// is acked or dead-lettered as recorded (ok); otherwise the caller
// dead-letters it as expired, under this lane's claim.
func (w *Worker) expiredElsewhere(ctx context.Context, j *job, pol policy) (action, bool) {
	if _, ok := j.msg.(*directMsg); !ok || j.key == "" {
		return action{}, false
	}
	// Over a dead holder's (or a run-out wait mark's) claim too: the
	// dead letter is then written under this lane's claim.
	c, st, err := w.cfg.Ledger.Claim(ctx, j.key, w.holder, w.claimLease(j.rb), true)
	if !w.ledgerResult(err, j.rb, j.id(), "claiming") {
		return action{}, false
	}
	j.fromState(st)
	switch c {
	case ledger.HeldByOther, ledger.AlreadyDelivered, ledger.AlreadyPermanent:
		a, _ := pol.before(c, st, time.Now())
		return a, true
	}
	return action{}, false
}

// countRepost counts, for a direct lane's message, a repost after a worker
// died posting it as a failed attempt: with no consumer there is no
// delivery count to tell a message that kills every worker taking it
// (MaxRedeliveries), so the retry budget bounds it instead. It only
// counts: the takeover claim that follows checks the budget
// ([policy.before]), so the dead letter, when the budget is spent, is
// written under a claim and never beside another lane's post. (Two lanes
// that both see the dead holder both count: the budget errs short.)
func (w *Worker) countRepost(ctx context.Context, j *job) {
	if _, ok := j.msg.(*directMsg); !ok || j.key == "" {
		return
	}
	_, err := w.cfg.Ledger.RecordFailure(ctx, j.key, w.holder, time.Now())
	w.ledgerResult(err, j.rb, j.id(), "counting the repost of")
}
