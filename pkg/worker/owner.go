package worker

import (
	"context"
	"hash/fnv"
	"sync/atomic"

	"github.com/botrelay/botrelay/pkg/ledger"
)

// Ownership spreads the robots over the live workers by rendezvous
// (highest random weight) hashing: of the workers that serve a robot (its
// name is in their announced robot set, and they are not draining), the
// one with the highest score(worker, robot) owns it and runs its lane. So
// 10,000 active robots over 3 workers are about 3,333 lanes each instead
// of 10,000; when a worker dies (its announcement expires, 3 presence
// intervals) or drains (it announces that it leaves), only its robots move,
// each to the next-highest worker; a joining worker takes its share from
// every other worker.
//
// Correctness never depends on it: two workers that briefly both run a
// robot's lane keep its order and its limits (a direct lane handles only
// the robot's first message, and the ledger's claim lets one of them post
// it; a consumer lane's consumer is shared and hands out one message at a
// time); ownership only saves the reads.

// owner is the [ownership] of a worker with a Presence. Its view is
// replaced by [owner.refresh], which runs from the sweep loop every
// presence interval (sooner in the first seconds after the start, see
// [firstLook]); Owns answers from memory.
type owner struct {
	self   string // this process's presence id
	view   atomic.Pointer[ownerView]
	rescan func() // called when the membership changes
}

type ownerView struct {
	members *ledger.Members
	key     string
}

// newOwner returns this worker's ownership: nil (owns every robot)
// without a Presence.
func (w *Worker) newOwner() ownership {
	if w.cfg.Presence == nil {
		return nil
	}
	return &owner{self: w.holder, rescan: w.rescan}
}

// Owns implements [ownership]: before the first view, every robot.
func (o *owner) Owns(robot string) bool {
	v := o.view.Load()
	if v == nil {
		return true
	}
	return rendezvous(robot, v.members.ServedBy(robot), o.self) == o.self
}

// refresh announces a, reads the live workers and takes them as the new
// view; a changed membership (a worker joined, left, or changed its
// robots) triggers a rescan. On an error the previous view is kept.
func (o *owner) refresh(ctx context.Context, p ledger.Presence, a ledger.Announcement) (*ledger.Members, error) {
	if err := p.Announce(ctx, a); err != nil {
		return nil, err
	}
	m, err := p.Members(ctx)
	if err != nil {
		return nil, err
	}
	key := m.Key()
	prev := o.view.Swap(&ownerView{members: m, key: key})
	if prev != nil && prev.key != key {
		o.rescan()
	}
	return m, nil
}

// rendezvous returns the owner of robot among workers, plus self (a
// worker always counts itself, even before its announcement is read
// back): the highest score, ties broken by the smaller id. It returns ""
// with no candidate.
func rendezvous(robot string, workers []string, self string) string {
	best, bestScore := "", uint64(0)
	consider := func(w string) {
		if w == "" {
			return
		}
		s := score(w, robot)
		if best == "" || s > bestScore || (s == bestScore && w < best) {
			best, bestScore = w, s
		}
	}
	for _, w := range workers {
		consider(w)
	}
	consider(self)
	return best
}

// score is the rendezvous weight of (worker, robot): the FNV-1a hashes
// of both, each finished and then combined with the SplitMix64 mixer, so
// that names differing in one character spread well. It is the same in
// every process and every release: changing it moves robots between
// workers during a rolling deploy.
func score(worker, robot string) uint64 {
	return mix64(mix64(fnv64(worker)) ^ fnv64(robot))
}

func fnv64(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return mix64(h.Sum64())
}

// mix64 is SplitMix64's finalizer, a bijection with full avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// reasons returns why each unserved robot is unserved.
func (u *unservedSet) reasons() map[string]string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.m) == 0 {
		return nil
	}
	out := make(map[string]string, len(u.m))
	for r, err := range u.m {
		out[r] = err.Error()
	}
	return out
}
