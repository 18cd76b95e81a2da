package worker

// Robot pools: several robots of one chat group behind one name.
//
// A pool is a [Robot] with [Robot.Pool] set. It is delivered like a robot —
// its own subject, its own lane (one message at a time, so publish order
// is kept whichever member posts), ledger keys "<pool>/<id>" — but every
// attempt is made by one of its members, chosen just before the attempt
// ([Worker.poolAttempt], hooked at the top of [Worker.attempt]): the
// member's webhook, secret, keywords, limit key, cool-off and host
// semaphore are used for the request, so a member addressed directly and
// through the pool shares one window.
//
// The choice: among the members in rotation, the one whose next slot is
// earliest by the limiter's own state (read with [limiter.Inspector],
// which writes nothing); ties, as when every member is free, go round in
// the configured order, so free members take turns. A member cooling off
// has its next slot at the end of its cool-off, so it is skipped while
// another member is sooner free. After a throttle, a pool goes to its next
// member at once instead of waiting out the cool-off (decide.go).
//
// Out of rotation: a member whose request failed for a reason of its own
// ([delivery.FaultRobot]: token not found, robot disabled, sign not match,
// IP not whitelisted) leaves the rotation of this worker for
// [Config.PoolRetry] (default 1h), with an error log and
// botrelay_pool_member_state{pool,robot} 0; the message goes to another
// member, no attempt of it spent. After PoolRetry the member is tried again
// with the next message; a reload or restart puts it back at once. The
// state is each worker's own, in memory: the failure is the platform's
// fixed answer to that robot, so every worker learns it with its first
// request to the member (one refused request per worker per PoolRetry,
// cheap), and nothing stale outlives the configuration an operator fixes.
// The member a request goes to is recorded with its claim in the ledger
// ([ledger.State.Member]): a worker taking over a message whose worker died
// posting it reposts it through that member ([job.repostTo]), whose
// platform robot drops the repeat, waiting for that member's window in the
// lane if need be (not for a cool-off: a member the platform throttles
// since is left for the next one, as after any throttle). A request left
// unanswered is retried through its member by the same worker
// ([pool.sticky], in memory; another worker does not know it).
// A failure of the message (missing keyword, too long) is dead-lettered as
// for a robot. With no member left in rotation the message is
// dead-lettered (permanent) with the last member's reason.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/delivery"
)

// pool is one robot pool's rotation in this worker.
type pool struct {
	name    string
	members []*Robot
	mu      sync.Mutex
	next    int                  // the member a tie goes to first
	out     map[string]outMember // members out of rotation, by name
	// sticky holds, by ledger key, the member whose request for the
	// message was left without an answer: the platform may have it, and
	// only that member's platform robot drops a repeat (DingTalk's
	// msgUuid), so the message's next attempt goes to it again.
	sticky map[string]string
}

// maxSticky bounds [pool.sticky]: past it the map is started afresh (its
// entries are a best effort; a message retried by another worker is not
// in it either).
const maxSticky = 4096

// outMember is a member out of rotation: since at, until until, for res.
type outMember struct {
	name      string
	at, until time.Time
	res       delivery.Result
}

// buildPools returns the rotations of the pools among robots, whose
// members are looked up in byName (the worker's robots by name): every
// member a configured robot (not a pool, not a reply robot) of one
// platform, in one pool only. It changes nothing: a reload validates the
// new pools with it before switching.
func buildPools(robots []Robot, byName map[string]*Robot) (map[string]*pool, error) {
	pools := make(map[string]*pool)
	inPool := map[string]string{}
	for i := range robots {
		rb := &robots[i]
		if len(rb.Pool) == 0 {
			continue
		}
		if rb.Replies {
			return nil, fmt.Errorf("%w: pool %q cannot be an app's reply robot", ErrInvalidConfig, rb.Name)
		}
		p := &pool{name: rb.Name, out: make(map[string]outMember), sticky: make(map[string]string)}
		for _, name := range rb.Pool {
			m, ok := byName[name]
			switch {
			case !ok:
				return nil, fmt.Errorf("%w: pool %q: member %q is not a configured robot", ErrInvalidConfig, rb.Name, name)
			case len(m.Pool) > 0:
				return nil, fmt.Errorf("%w: pool %q: member %q is a pool", ErrInvalidConfig, rb.Name, name)
			case m.Replies:
				return nil, fmt.Errorf("%w: pool %q: member %q is an app's reply robot", ErrInvalidConfig, rb.Name, name)
			case inPool[name] != "":
				return nil, fmt.Errorf("%w: robot %q is a member of pools %q and %q", ErrInvalidConfig, name, inPool[name], rb.Name)
			case m.Platform != p.platform(m):
				return nil, fmt.Errorf("%w: pool %q mixes platforms %s and %s", ErrInvalidConfig, rb.Name, p.members[0].Platform, m.Platform)
			}
			inPool[name] = rb.Name
			p.members = append(p.members, m)
		}
		pools[rb.Name] = p
	}
	return pools, nil
}

// setPools sets the member metric of pools, the worker's from now on
// (every member in rotation: a reload puts back the members taken out).
func (w *Worker) setPools(pools map[string]*pool) {
	w.m.poolMembers.Reset()
	for _, p := range pools {
		for _, m := range p.members {
			w.m.poolMembers.WithLabelValues(p.name, m.Name).Set(1)
		}
	}
}

// platform is the platform of p's members (m's for the first).
func (p *pool) platform(m *Robot) string {
	if len(p.members) == 0 {
		return m.Platform
	}
	return p.members[0].Platform
}

// poolAttempt makes one attempt of j's pool message through the member
// chosen for it: j.rb is the member during the attempt and the pool again
// after it, so everything else (records, events, dead letters, the ledger
// key) stays the pool's.
func (w *Worker) poolAttempt(runCtx, ctx context.Context, j *job, p *pool, takeover bool) (action, bool) {
	m, a, ok := w.pickMember(runCtx, p, j)
	if !ok {
		return a, false
	}
	poolRobot := j.rb
	j.rb = m
	defer func() { j.rb = poolRobot }()
	pol := w.policy(m)
	pol.pool = true
	a, sent := w.attempt(runCtx, ctx, j, pol, takeover)
	if a.memberOut {
		w.takeOut(p, m, j.res)
	}
	if sent && j.res.Outcome != delivery.NotSent {
		j.repostTo = "" // its repost is made (not just abandoned unwritten): later attempts choose anew
		p.mu.Lock()
		if j.res.Outcome == delivery.Retryable && j.res.HTTPStatus == 0 {
			if len(p.sticky) >= maxSticky {
				clear(p.sticky)
			}
			p.sticky[j.key] = m.Name
		} else {
			delete(p.sticky, j.key)
		}
		p.mu.Unlock()
	}
	return a, sent
}

// pickMember chooses the member for the next attempt: the earliest next
// slot among those in rotation whose keywords the message carries, ties
// in turn — unless the message's last request went unanswered (made by
// this worker: [pool.sticky]) or its worker died making it (the member
// recorded in the ledger: [job.repostTo]), then the same member while it
// is in rotation. With none in rotation, or none whose keywords
// the message carries, it returns the dead letter to make instead (ok
// false).
func (w *Worker) pickMember(ctx context.Context, p *pool, j *job) (m *Robot, a action, ok bool) {
	in, last := w.inRotation(p, time.Now())
	if len(in) == 0 {
		// No request of this message may have been made: keep the answer
		// that took the last member out.
		j.res = last.res
		j.rec.Class, j.rec.HTTPStatus, j.rec.ErrCode, j.rec.ErrMsg = last.res.Outcome.String(), last.res.HTTPStatus, last.res.ErrCode, last.res.ErrMsg
		return nil, poolEmpty(p.name, last.name, last.res.Reason), false
	}
	// Only members whose keywords the message carries (each robot of a
	// chat group has its own): one of another keyword would refuse it.
	var kwErr error
	carried := in[:0:0]
	for _, i := range in {
		if err := delivery.CheckKeywords(p.members[i].Robot, j.env); err != nil {
			kwErr = fmt.Errorf("pool member %s: %w", p.members[i].Name, err)
			continue
		}
		carried = append(carried, i)
	}
	if len(carried) == 0 {
		return nil, action{verb: doDeadLetter, reason: deadletter.ReasonMissingKeyword, event: "dead_letter",
			detail: kwErr.Error()}, false
	}
	in = carried
	p.mu.Lock()
	name, sticky := p.sticky[j.key]
	p.mu.Unlock()
	if j.repostTo != "" {
		// A worker died posting it through that member (recorded with its
		// claim): the repost goes there too, so the platform can drop it.
		name, sticky = j.repostTo, true
	}
	if sticky {
		// Its last request was not answered: the same member again, so
		// the platform can drop a repeat.
		for _, i := range in {
			if p.members[i].Name == name {
				return p.members[i], action{}, true
			}
		}
	}
	slots := make([]time.Duration, len(p.members))
	for i := range slots {
		slots[i] = -1
	}
	for _, i := range in {
		// A limiter that cannot tell, or an error (Redis down), reads as
		// free: the reservation that follows fails closed.
		s, _ := w.inspect(ctx, p.members[i])
		slots[i] = s.NextSlot
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	i := earliest(slots, p.next)
	p.next = (i + 1) % len(p.members)
	return p.members[i], action{}, true
}

// earliest returns the index of the least non-negative slot (negative:
// out of rotation), the first from index from on, going round, among
// equals. At least one slot is non-negative.
func earliest(slots []time.Duration, from int) int {
	best := -1
	for k := range slots {
		i := (from + k) % len(slots)
		if slots[i] >= 0 && (best < 0 || slots[i] < slots[best]) {
			best = i
		}
	}
	return best
}

// inRotation returns the indexes of p's members in rotation at now,
// putting back those whose time out is over, and the member taken out
// last.
func (w *Worker) inRotation(p *pool, now time.Time) (in []int, last outMember) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, m := range p.members {
		o, out := p.out[m.Name]
		if out && now.Before(o.until) {
			if o.at.After(last.at) || last.name == "" {
				last = o
			}
			continue
		}
		if out {
			delete(p.out, m.Name)
			w.m.poolMembers.WithLabelValues(p.name, m.Name).Set(1)
			w.log.Info("pool member back in rotation: the next message tries it again", "pool", p.name, "robot", m.Name,
				"out_since", o.at, "reason", o.res.Reason)
		}
		in = append(in, i)
	}
	return in, last
}

// takeOut takes m out of p's rotation after res, a failure of its own.
func (w *Worker) takeOut(p *pool, m *Robot, res delivery.Result) {
	now := time.Now()
	p.mu.Lock()
	p.out[m.Name] = outMember{name: m.Name, at: now, until: now.Add(w.cfg.PoolRetry), res: res}
	left := len(p.members) - len(p.out)
	p.mu.Unlock()
	w.m.poolMembers.WithLabelValues(p.name, m.Name).Set(0)
	w.log.Error("pool member failed for a reason of its own: out of rotation, its messages go to the other members",
		"pool", p.name, "robot", m.Name, "reason", res.Reason, "errcode", res.ErrCode, "http_status", res.HTTPStatus,
		"members_left", left, "retry_in", w.cfg.PoolRetry)
}
