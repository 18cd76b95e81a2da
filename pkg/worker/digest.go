package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/stream"
)

// Digest is a robot's digest policy ([Robot.Digest]): when the robot's
// budget cannot post its waiting messages one by one before each has
// waited After, the next post folds the waiting messages, in publish
// order, into one markdown summary ([envelope.FoldDigest]).
//
// A digest robot's lane holds its backlog: its consumer hands out up to
// [MaxDigestPending] messages, all kept in progress (heartbeats) while they
// wait. Only one worker at a time serves a digest robot (a lease in the
// ledger), so digests keep publish order. Like any lane it stops once it held
// and pulled nothing for LaneIdle (its consumer, with the lanes'
// InactiveThreshold, is then deleted by the server) and starts again with
// the next message. A message whose lone post may have reached the
// platform (a failure or a crash recorded in the ledger) is only ever
// posted alone again, never folded. When the robot's next slot comes
// (the limiter's [limiter.Inspector] tells), the oldest message is posted
// alone, the normal way, if the budget can post every waiting message one
// by one before each has waited After; otherwise a digest is folded of as
// many waiting messages as fit the platform's size limit (and MaxItems),
// posted no later than when its oldest message has waited After, so that
// messages arriving meanwhile join it. A digest goes through the same
// attempt and decision as a message (claim, slot, request, retries,
// throttles), under its own ledger key "<robot>/<digest id>"; its items
// are acked only once it was accepted, each recorded as delivered in
// "digest:<id>". A dead-lettered digest dead-letters each folded message
// (reason digest, the digest's errcode). The digest's id and content are
// a function of its items, and its composition is recorded in the ledger
// ([ledger.Digests]) before it is posted: a worker that picks the items
// up again posts the same digest (DingTalk's msgUuid drops the repeat) or,
// when it was delivered, only acks them.
type Digest struct {
	// After is the longest a message may wait for its own post.
	After time.Duration
	// MaxItems bounds a digest's items; 0: as many as fit.
	MaxItems int
	// Title heads every digest (envelope.DefaultDigestTitle when empty).
	Title string
}

// MaxDigestPending is the MaxAckPending of a digest robot's consumer: the
// most waiting messages its lane sees (and folds from) at once.
const MaxDigestPending = 1000

// digestFetchWait is the longest a digest lane waits for more messages
// while it holds some: how often it looks at its slot.
const digestFetchWait = 100 * time.Millisecond

// dItem is one message a digest lane holds.
type dItem struct {
	msg       jetstream.Msg
	env       *envelope.Envelope
	key       string
	seq       uint64
	published time.Time
	// solo: an attempt of the message alone may have reached the platform
	// (a failure or a crash recorded in the ledger): it is only posted
	// alone again, under its own id (DingTalk's msgUuid drops the repeat),
	// never folded, which would show it twice.
	solo bool
}

// digester is a digest robot's lane state.
type digester struct {
	w  *Worker
	rb *Robot
	c  jetstream.Consumer
	// mu guards held (the heartbeat reads it).
	mu   sync.Mutex
	held map[uint64]*dItem
	// owned: this worker holds the robot's digest lease.
	owned bool
	// ackWaitNS is the consumer's AckWait (the heartbeat reads it).
	ackWaitNS atomic.Int64
	// stale is when a recorded digest was first seen with items missing.
	stale  map[string]time.Time
	limits envelope.Limits
	out    jetstream.Stream // the outbound stream, once looked up
	// lastMsg is when the lane last held or pulled a message; dueBack
	// when the last message it handed back for later comes back (the lane
	// stays until then, like [Worker.lane]).
	lastMsg, dueBack time.Time
	kwLogged         bool // a digest without a keyword was logged
}

// digestLaneKey is the ledger key of a digest robot's lane lease.
func digestLaneKey(robot string) string { return robot + "/~digest-lane" }

// digestLane serves a digest robot until ctx is done, a reload changes
// the robot, or, like any lane, it held and pulled nothing for LaneIdle
// with no message handed back still due: then it stops (its consumer,
// with the lanes' InactiveThreshold, expires) and reports idle, and the
// next message starts it again. The hook of [Worker.lane] for robots with
// a Digest.
func (w *Worker) digestLane(ctx context.Context, l *laneState, rb *Robot, c jetstream.Consumer) (idle bool) {
	d := &digester{w: w, rb: rb, held: map[uint64]*dItem{}, stale: map[string]time.Time{}, lastMsg: time.Now()}
	d.ackWaitNS.Store(int64(w.cfg.AckWait))
	if p, ok := delivery.LookupPlatform(rb.Platform); ok {
		d.limits = p.Size
	}
	if c != nil && (c.CachedInfo().Config.MaxAckPending < MaxDigestPending || c.CachedInfo().Config.InactiveThreshold <= 0) {
		c = nil // created for one message at a time (or never to expire): made again for the backlog
	}
	d.c = c
	stop := d.heartbeat()
	defer func() {
		stop()
		d.handBackAll()
		_ = w.cfg.Ledger.Release(context.WithoutCancel(ctx), digestLaneKey(rb.Name), w.holder)
	}()
	errWait := time.Second
	for ctx.Err() == nil {
		if cur, ok := w.robot(rb.Name); !ok || cur != rb {
			// Reloaded (removed, changed, or without a digest): the lane
			// goes on with the robot's configuration of now, on a consumer
			// made again for it (lanes.go).
			return false
		}
		if d.c == nil {
			nc, err := w.ensureDigestConsumer(ctx, rb.Name)
			if err != nil {
				if ctx.Err() == nil {
					w.noConsumer.set(rb.Name, err)
					w.m.unserved.Set(float64(w.noConsumer.count()))
					w.log.Error("could not create robot consumer: the robot is not served", "robot", rb.Name, "err", err, "retry_in", errWait)
					sleep(ctx, errWait)
					errWait = min(2*errWait, 30*time.Second)
				}
				continue
			}
			d.c, errWait = nc, time.Second
			if cw := nc.CachedInfo().Config.AckWait; cw > 0 {
				d.ackWaitNS.Store(int64(min(w.cfg.AckWait, cw)))
			}
			w.noConsumer.clear(rb.Name)
			w.m.unserved.Set(float64(w.noConsumer.count()))
		}
		if !d.isOwned() && !d.own(ctx) { // the heartbeat renews it
			d.handBackAll()
			// Another worker holds the lease: past its lifetime (its holder
			// may have died) this lane may stop like an idle one.
			if time.Since(d.lastMsg) >= w.cfg.LaneIdle+d.ackWait() && w.stopLane(l, false) {
				return true
			}
			sleep(ctx, w.cfg.FetchWait)
			continue
		}
		wait := w.cfg.FetchWait
		if d.count() > 0 {
			wait = digestFetchWait
		}
		// An announcement from now on is of a message this pull may miss.
		select {
		case <-l.wake:
		default:
		}
		d.fetch(ctx, wait)
		if ctx.Err() != nil {
			return false
		}
		if d.count() > 0 {
			d.lastMsg = time.Now()
			d.step(ctx)
			continue
		}
		if now := time.Now(); now.Sub(d.lastMsg) >= w.cfg.LaneIdle && !now.Before(d.dueBack) && w.stopLane(l, false) {
			return true
		}
	}
	return false
}

// ensureDigestConsumer is [Worker.ensureConsumer] for a digest robot: the
// consumer hands out MaxDigestPending messages and expires like a lane's.
func (w *Worker) ensureDigestConsumer(ctx context.Context, robot string) (jetstream.Consumer, error) {
	select {
	case w.creates <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-w.creates }()
	return w.cfg.Topology.EnsureBacklogConsumer(ctx, w.js, robot, w.cfg.AckWait, w.consumerInactive(), MaxDigestPending)
}

// handled notes the action taken on a message or digest: one handed back
// for later keeps the lane until it is due, with a pull's slack.
func (d *digester) handled(a action) {
	now := time.Now()
	d.lastMsg = now
	if a.delay > 0 && (a.verb == doRetry || a.verb == doWait) {
		d.dueBack = maxTime(d.dueBack, now.Add(a.delay+d.w.cfg.FetchWait))
	}
}

// own claims (or renews) the robot's digest lease; a ledger error keeps
// the last answer.
func (d *digester) own(ctx context.Context) bool {
	c, _, err := d.w.cfg.Ledger.Claim(ctx, digestLaneKey(d.rb.Name), d.w.holder, d.ackWait(), true)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		d.owned = c == ledger.Claimed
	}
	return d.owned
}

func (d *digester) ackWait() time.Duration { return time.Duration(d.ackWaitNS.Load()) }

func (d *digester) isOwned() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.owned
}

func (d *digester) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.held)
}

// heartbeat keeps every held message in progress and renews the lease,
// every third of the AckWait, until stop is called.
func (d *digester) heartbeat() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(d.ackWait()/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			d.mu.Lock()
			for _, it := range d.held {
				_ = it.msg.InProgress()
			}
			d.mu.Unlock()
			d.own(context.Background())
			t.Reset(max(d.ackWait()/3, time.Millisecond)) // the consumer's may have been found shorter
		}
	})
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// take removes items from the held set: from now on their handler owns
// them (no heartbeat of the lane may follow their ack or NAK).
func (d *digester) take(items ...*dItem) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, it := range items {
		delete(d.held, it.seq)
	}
}

// handBackAll returns every held message to JetStream at once.
func (d *digester) handBackAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for s, it := range d.held {
		_ = it.msg.Nak()
		delete(d.held, s)
	}
}

// fetch adds the waiting messages to the held set, waiting up to wait for
// the first.
func (d *digester) fetch(ctx context.Context, wait time.Duration) {
	n := MaxDigestPending - d.count()
	if n <= 0 {
		return
	}
	batch, err := d.c.Fetch(n, jetstream.FetchMaxWait(wait))
	if err == nil {
		for msg := range batch.Messages() {
			d.add(ctx, msg)
		}
		err = batch.Error()
	}
	switch {
	case err == nil, ctx.Err() != nil:
	case errors.Is(err, jetstream.ErrNoMessages), errors.Is(err, nats.ErrTimeout):
	case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrConsumerDeleted):
		d.w.log.Warn("robot consumer is gone; creating it again", "robot", d.rb.Name)
		d.c = nil
	default:
		d.w.log.Warn("fetch failed", "robot", d.rb.Name, "err", err)
		if c, _ := d.w.checkConsumer(ctx, d.rb, d.c, time.Now()); c == nil {
			d.c = nil
		} else {
			sleep(ctx, time.Second)
		}
	}
}

// add holds msg, or, when it cannot be folded (undecodable, misaddressed,
// expired, without the robot's keyword, a reply), hands it to the normal
// path at once, which dead-letters it as it would any message.
func (d *digester) add(ctx context.Context, msg jetstream.Msg) {
	md, err := msg.Metadata()
	var env *envelope.Envelope
	if err == nil {
		env, err = envelope.Decode(msg.Data())
	}
	// An expired one is held all the same: it may be an item of a digest
	// posted before (a crash before the acks), to settle as delivered;
	// step dead-letters the others.
	if err != nil || env.Robot != d.rb.Name || d.rb.Replies ||
		delivery.CheckKeywords(d.rb.Robot, env) != nil {
		d.handled(d.w.handle(ctx, d.rb, msg, d.c, d.ackWait(), nil))
		return
	}
	it := &dItem{msg: msg, env: env, key: ledgerKey(d.rb.Name, msg, env), seq: md.Sequence.Stream, published: md.Timestamp}
	// Even a first delivery may have a history: a consumer made anew
	// (the lazy lanes') hands out its unacked messages as first
	// deliveries again.
	st, err := d.w.cfg.Ledger.Get(ctx, it.key)
	if err == nil && (st.Delivered || st.Permanent != "") {
		// Posted before (a digest whose ack of it was lost), or
		// dead-lettered: never folded again.
		d.mu.Lock()
		delete(d.held, it.seq) // an earlier copy
		d.mu.Unlock()
		d.settle(ctx, it)
		return
	}
	// Unreadable: a redelivery alone, to be safe (the normal path claims
	// it); a first delivery is folded as before (a Redis blip would
	// otherwise keep a whole backlog from folding).
	it.solo = (err != nil && md.NumDelivered > 1) || st.Failures > 0 || st.Holder != ""
	d.mu.Lock()
	d.held[it.seq] = it // a redelivery replaces the earlier copy
	d.mu.Unlock()
}

// settle settles it, which the ledger has as delivered or dead-lettered,
// as the normal path's claim would (the claim keeps a delivered entry its
// done TTL), but without the normal path's expiry check: an item of a
// posted digest that expired since is delivered, not expired. An entry
// gone meanwhile sends it down the normal path.
func (d *digester) settle(ctx context.Context, it *dItem) {
	w := d.w
	c, st, err := w.cfg.Ledger.Claim(ctx, it.key, w.holder, w.claimLease(d.rb), false)
	if err != nil || (c != ledger.AlreadyDelivered && c != ledger.AlreadyPermanent) {
		if err == nil && c == ledger.Claimed {
			w.ledgerResult(w.cfg.Ledger.Release(ctx, it.key, w.holder), d.rb, it.env.ID, "releasing")
		}
		d.handled(w.handle(ctx, d.rb, it.msg, d.c, d.ackWait(), nil))
		return
	}
	j := w.newJob(d.rb, it.msg)
	j.env, j.key, j.ledgerOK, j.checked = it.env, it.key, true, true
	j.rec.Envelope, j.rec.Sequence = it.env, it.seq
	j.fromState(st)
	a, _ := w.policy(d.rb).before(c, st, time.Now())
	w.apply(context.WithoutCancel(ctx), j, a)
	d.handled(a)
}

// sorted returns the held messages in stream order.
func (d *digester) sorted() []*dItem {
	d.mu.Lock()
	items := make([]*dItem, 0, len(d.held))
	for _, it := range d.held {
		items = append(items, it)
	}
	d.mu.Unlock()
	slices.SortFunc(items, func(a, b *dItem) int { return int64Cmp(a.seq, b.seq) })
	return items
}

func int64Cmp(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// step makes the lane's next move: a recorded digest first, else, once
// the robot has a slot, the oldest message alone or a digest.
func (d *digester) step(ctx context.Context) {
	w, rb := d.w, d.rb
	dg := rb.Digest
	if dg == nil {
		return // reloaded without a digest: the lane turns into a plain one
	}
	items := d.sorted()
	if len(items) == 0 {
		return
	}
	if d.olderOutstanding(ctx, items[0].seq) {
		// A message published before every held one is still out: handed
		// back for a retry or a wait, or held by a worker that died. It
		// comes back (or is settled) first: publish order.
		return
	}
	// A recorded digest first, expired items included: posted before,
	// they are settled with it, not dead-lettered as never posted.
	if done := d.recorded(ctx, items); done {
		return
	}
	now := time.Now()
	var live []*dItem
	for _, it := range items {
		if it.env.Expired(now) {
			d.take(it)
			d.handled(w.handle(ctx, rb, it.msg, d.c, d.ackWait(), nil)) // dead-lettered as expired
			continue
		}
		live = append(live, it)
	}
	if len(live) == 0 {
		return
	}
	// Only the messages before one to post alone may fold (publish order).
	foldable := live
	for i, it := range live {
		if it.solo {
			foldable = live[:i]
			break
		}
	}
	st := d.inspect(ctx)
	if st.NextSlot > 0 {
		sleep(ctx, min(st.NextSlot, w.cfg.FetchWait))
		return
	}
	published := make([]time.Time, len(live))
	for i, it := range live {
		published[i] = it.published
	}
	if len(foldable) == 0 || !foldNeeded(now, published, dg.After, st, rb.Limit) {
		d.take(live[0])
		d.handled(w.handle(ctx, rb, live[0].msg, d.c, d.ackWait(), nil))
		return
	}
	env, n := envelope.FoldDigest(digestItems(foldable), d.options())
	if n >= 2 && delivery.CheckKeywords(rb.Robot, env) != nil {
		// A title without the robot's keyword (config checks it; the Go
		// library does not) and items without it on their first line:
		// the platform would refuse the digest, and every item with it.
		if !d.kwLogged {
			d.kwLogged = true
			w.log.Error("a digest would carry none of the robot's keywords: its messages are posted one by one; put a keyword in the digest's title",
				"robot", rb.Name)
		}
		n = 0
	}
	if n < 2 {
		d.take(live[0])
		d.handled(w.handle(ctx, rb, live[0].msg, d.c, d.ackWait(), nil))
		return
	}
	// Not full, and its oldest message may still wait: let more join.
	if n == len(live) && len(live) < MaxDigestPending && (dg.MaxItems == 0 || n < dg.MaxItems) &&
		now.Before(foldBy(live[0].published, dg.After)) {
		return
	}
	keys := make([]string, n)
	for i := range n {
		keys[i] = live[i].key
	}
	if plans, ok := w.cfg.Ledger.(ledger.Digests); ok {
		w.ledgerResult(plans.PlanDigest(context.WithoutCancel(ctx), env.ID, keys), rb, env.ID, "recording the composition of")
	}
	d.post(ctx, env, live[:n])
}

// olderOutstanding reports whether the robot's subject holds a message
// older than seq (which the lane does not hold, as seq is its oldest). An
// error says no: the lane goes on rather than stall.
func (d *digester) olderOutstanding(ctx context.Context, seq uint64) bool {
	if d.out == nil {
		s, err := d.w.js.Stream(ctx, d.w.cfg.Topology.OutStream())
		if err != nil {
			return false
		}
		d.out = s
	}
	m, err := d.out.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(d.w.cfg.Topology.OutSubject(d.rb.Name)))
	return err == nil && m.Sequence < seq
}

// foldBy is when a digest whose oldest message was published at p is
// posted at the latest: before p has waited after, less a tenth of after
// for the request itself.
func foldBy(p time.Time, after time.Duration) time.Time { return p.Add(after - after/10) }

// recorded deals with a digest recorded before (by this worker or one that
// died) whose items are held: it posts it again, the same, when all its
// items are held; acks the held ones when it was delivered; else waits
// for the others to come back (NAKed for a retry). It reports whether the
// lane should do nothing else this step.
func (d *digester) recorded(ctx context.Context, live []*dItem) bool {
	w, rb := d.w, d.rb
	dg, ok := w.cfg.Ledger.(ledger.Digests)
	if !ok {
		return false
	}
	keys := make([]string, len(live))
	byKey := make(map[string]*dItem, len(live))
	for i, it := range live {
		keys[i] = it.key
		byKey[it.key] = it
	}
	ids, err := dg.DigestsOf(ctx, keys)
	if !w.ledgerResult(err, rb, "", "looking up the digests of") {
		return false
	}
	for _, id := range ids {
		if id == "" {
			continue
		}
		ikeys, err := dg.DigestKeys(ctx, id)
		if !w.ledgerResult(err, rb, id, "reading the composition of") || ikeys == nil {
			continue
		}
		var have []*dItem
		for _, k := range ikeys {
			if it := byKey[k]; it != nil {
				have = append(have, it)
			}
		}
		if len(have) == len(ikeys) {
			env, n := envelope.FoldDigest(digestItems(have), d.options())
			if n == len(have) && env.ID == id {
				delete(d.stale, id)
				d.post(ctx, env, have)
				return true
			}
			w.log.Error("a recorded digest cannot be rebuilt the same (its title or size rules changed?); folding its messages anew",
				"robot", rb.Name, "digest", id)
			continue
		}
		st, err := w.cfg.Ledger.Get(ctx, stream.MsgID(rb.Name, id))
		if w.ledgerResult(err, rb, id, "reading") && st.Delivered {
			// Posted and accepted; some items were acked before a crash:
			// settle the others.
			delete(d.stale, id)
			j := d.digestJob(&envelope.Envelope{ID: id, Robot: rb.Name}, have)
			j.res.MessageID = st.MessageID
			w.apply(context.WithoutCancel(ctx), j, action{verb: doAck, event: "duplicate"})
			return true
		}
		since, seen := d.stale[id]
		if !seen {
			d.stale[id] = time.Now()
			return true
		}
		if time.Since(since) < 3*d.ackWait()+w.cfg.Backoff.Max {
			return true // its other items come back from a retry's delay
		}
		w.log.Warn("a recorded digest's other messages did not come back; folding the held ones anew", "robot", rb.Name, "digest", id,
			"held", len(have), "of", len(ikeys))
	}
	return false
}

// inspect asks the limiter for the robot's next slot; a limiter that
// cannot tell (or an error) says a slot is free, and the attempt's own
// reservation decides.
func (d *digester) inspect(ctx context.Context) limiter.State {
	st, _ := d.w.inspect(ctx, d.rb)
	return st
}

// options are the robot's digest rendering options.
func (d *digester) options() envelope.DigestOptions {
	o := envelope.DigestOptions{Robot: d.rb.Name, Limits: d.limits}
	if dg := d.rb.Digest; dg != nil {
		o.Title, o.MaxItems = dg.Title, dg.MaxItems
	}
	return o
}

func digestItems(items []*dItem) []envelope.DigestItem {
	out := make([]envelope.DigestItem, len(items))
	for i, it := range items {
		out[i] = envelope.DigestItem{Key: it.key, Env: it.env}
	}
	return out
}

// foldNeeded reports whether posting the waiting messages (their publish
// times, oldest first) one by one from now would make one of them wait
// longer than after: the first free slots of the window at once, then Max
// per window (and margin) after that.
func foldNeeded(now time.Time, published []time.Time, after time.Duration, st limiter.State, l limiter.Limit) bool {
	if len(published) < 2 || l.Max <= 0 {
		return false
	}
	free := max(l.Max-st.InWindow, 1)
	span := l.Window + l.Margin
	for k, p := range published {
		at := now.Add(st.NextSlot)
		if k >= free {
			at = at.Add(time.Duration((k-free)/l.Max+1) * span)
		}
		if at.Sub(p) > after {
			return true
		}
	}
	return false
}

// digestJob is the job of a digest: its envelope, its ledger key, and a
// message that stands for all its items.
func (d *digester) digestJob(env *envelope.Envelope, items []*dItem) *job {
	msgs := make([]jetstream.Msg, len(items))
	for i, it := range items {
		msgs[i] = it.msg
	}
	j := d.w.newJob(d.rb, &digestMsg{Msg: msgs[0], all: msgs})
	j.env, j.key, j.rec.Envelope = env, stream.MsgID(d.rb.Name, env.ID), env
	j.digest, j.ledgerOK, j.checked, j.numDelivered = items, true, true, 1
	return j
}

// post takes a digest to an outcome, like [Worker.handle] a message: the
// same attempts and decisions, carried out by [Worker.apply].
func (d *digester) post(runCtx context.Context, env *envelope.Envelope, items []*dItem) {
	w, rb := d.w, d.rb
	d.take(items...)
	j := d.digestJob(env, items)
	stop := w.heartbeat(j.msg, nil, d.ackWait(), nil)
	defer stop()
	ctx := context.WithoutCancel(runCtx)
	defer func() {
		if p := recover(); p != nil {
			stop()
			w.recovered(ctx, j, p)
		}
	}()
	pol := w.policy(rb)
	var a action
	for takeover := false; ; {
		var sent bool
		a, sent = w.attempt(runCtx, ctx, j, pol, takeover)
		if a.verb != doAgain {
			break
		}
		if a.event != "" {
			w.observe(Event{Robot: rb.Name, EnvelopeID: env.ID, Kind: a.event, Attempts: j.rec.Attempts, Result: j.res})
		}
		takeover = !sent && a.takeover
	}
	stop()
	w.apply(ctx, j, a)
	d.handled(a)
}

// settleDigest settles an accepted digest ([Worker.apply]'s doAck): each
// item recorded as delivered in "digest:<id>", then acked.
func (w *Worker) settleDigest(ctx context.Context, j *job, a action) {
	rb := j.rb
	if a.event != "duplicate" {
		w.m.digestItems.WithLabelValues(rb.Name).Add(float64(len(j.digest)))
		w.m.digests.WithLabelValues(rb.Name).Inc()
		if dg, ok := w.cfg.Ledger.(ledger.DigestNotes); ok {
			size := 0
			if b, err := json.Marshal(j.env.Message); err == nil {
				size = len(b)
			}
			w.ledgerResult(dg.NoteDigest(ctx, rb.Name, len(j.digest), size, time.Now()), rb, j.id(), "counting")
		}
		w.log.Info("digest posted", "robot", rb.Name, "digest", j.id(), "items", len(j.digest))
	}
	w.observe(Event{Robot: rb.Name, EnvelopeID: j.id(), Kind: "digest", Attempts: j.rec.Attempts + 1, Result: j.res,
		Reason: fmt.Sprintf("%d messages", len(j.digest))})
	for _, it := range j.digest {
		w.ledgerResult(w.cfg.Ledger.MarkDelivered(ctx, it.key, w.holder, "digest:"+j.id()), rb, it.env.ID, "recording the delivery of")
		w.observe(Event{Robot: rb.Name, EnvelopeID: it.env.ID, Kind: "delivered", Attempts: 1, Reason: "digest:" + j.id(), Result: j.res})
		w.ack(ctx, it.msg, rb.Name, it.env.ID)
	}
}

// deadLetterDigest dead-letters each item of a dead-lettered digest
// ([Worker.apply]'s doDeadLetter): reason digest, the digest's outcome
// (class, HTTP status, errcode) kept, so each can be replayed.
func (w *Worker) deadLetterDigest(ctx context.Context, j *job, a action) {
	w.log.Error("digest dead-lettered; so is each of its messages", "robot", j.rb.Name, "digest", j.id(),
		"reason", a.reason, "errcode", j.rec.ErrCode, "items", len(j.digest))
	if j.ledgerOK {
		out, _ := json.Marshal(outcomeRecord{Reason: a.reason, Detail: a.detail, Class: j.rec.Class, HTTPStatus: j.rec.HTTPStatus,
			ErrCode: j.rec.ErrCode, ErrMsg: j.rec.ErrMsg, Attempts: j.rec.Attempts})
		w.ledgerResult(w.cfg.Ledger.MarkPermanent(ctx, j.key, w.holder, string(out)), j.rb, j.id(), "recording the dead letter of")
	}
	for _, it := range j.digest {
		ij := &job{rb: j.rb, msg: it.msg, env: it.env, key: it.key, ledgerOK: j.ledgerOK, res: j.res}
		ij.rec = j.rec
		ij.rec.Envelope, ij.rec.Subject, ij.rec.Sequence = it.env, it.msg.Subject(), it.seq
		ij.rec.Reason = deadletter.ReasonDigest
		ij.rec.Detail = fmt.Sprintf("folded into digest %s, dead-lettered (%s): %s", j.id(), a.reason, a.detail)
		w.deadLetter(ctx, ij)
	}
}

// digestMsg stands for a digest's items in [Worker.apply]: acks, NAKs and
// heartbeats go to every item (what apply does not do through the items
// themselves: doRetry, doWait).
type digestMsg struct {
	jetstream.Msg
	all []jetstream.Msg
}

func (m *digestMsg) each(f func(jetstream.Msg) error) error {
	var errs []error
	for _, x := range m.all {
		errs = append(errs, f(x))
	}
	return errors.Join(errs...)
}

// Ack acks every item.
func (m *digestMsg) Ack() error { return m.each(jetstream.Msg.Ack) }

// DoubleAck acks every item.
func (m *digestMsg) DoubleAck(ctx context.Context) error {
	return m.each(func(x jetstream.Msg) error { return x.DoubleAck(ctx) })
}

// Nak hands every item back.
func (m *digestMsg) Nak() error { return m.each(jetstream.Msg.Nak) }

// NakWithDelay hands every item back for d.
func (m *digestMsg) NakWithDelay(d time.Duration) error {
	return m.each(func(x jetstream.Msg) error { return x.NakWithDelay(d) })
}

// InProgress heartbeats every item.
func (m *digestMsg) InProgress() error { return m.each(jetstream.Msg.InProgress) }

// Term terminates every item.
func (m *digestMsg) Term() error { return m.each(jetstream.Msg.Term) }
