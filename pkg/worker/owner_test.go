package worker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
)

func robotNamesN(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("robot-%05d", i)
	}
	return out
}

// owners maps each robot to its rendezvous owner among workers.
func owners(robots, workers []string) map[string]string {
	out := make(map[string]string, len(robots))
	for _, r := range robots {
		out[r] = rendezvous(r, workers, "")
	}
	return out
}

func TestOwnerRendezvous(t *testing.T) {
	tests := []struct {
		name    string
		robot   string
		workers []string
		self    string
		want    string
	}{
		// Pinned: the score must not change between releases (a rolling
		// deploy would move robots between workers).
		{name: "pinned a", robot: "ops-alerts", workers: []string{"w1", "w2", "w3"}, want: "w3"},
		{name: "pinned b", robot: "robot-00042", workers: []string{"w1", "w2", "w3"}, want: "w3"},
		{name: "pinned c", robot: "robot-00042", workers: []string{"w1", "w2"}, want: "w1"},
		{name: "order does not matter", robot: "robot-00042", workers: []string{"w3", "w1", "w2"}, want: "w3"},
		{name: "self counts", robot: "robot-00042", workers: []string{"w1", "w2"}, self: "w3", want: "w3"},
		{name: "self loses", robot: "robot-00042", workers: []string{"w3"}, self: "w1", want: "w3"},
		{name: "self already listed", robot: "robot-00042", workers: []string{"w3", "w1"}, self: "w3", want: "w3"},
		{name: "alone", robot: "x", self: "w9", want: "w9"},
		{name: "nobody", robot: "x", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, rendezvous(tt.robot, tt.workers, tt.self))
		})
	}
}

// 10,000 robots spread evenly: every worker's share within 4 standard
// deviations of a fair random draw.
func TestOwnerBalance(t *testing.T) {
	robots := robotNamesN(10_000)
	for _, workers := range [][]string{
		{"host-a-1234/k2j3", "host-b-1234/9xq1", "host-c-1234/0pp2"},
		{"w1", "w2", "w3"},
		{"w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9"},
	} {
		t.Run(fmt.Sprint(len(workers), workers[0]), func(t *testing.T) {
			count := map[string]int{}
			for _, w := range owners(robots, workers) {
				count[w]++
			}
			require.Len(t, count, len(workers))
			fair := float64(len(robots)) / float64(len(workers))
			// Within 4 standard deviations of a fair draw (binomial): 4%
			// of the fair share with 3 workers, 12% with 10.
			p := 1 / float64(len(workers))
			sigma := math.Sqrt(float64(len(robots)) * p * (1 - p))
			for w, n := range count {
				require.InDelta(t, fair, float64(n), 4*sigma, "worker %s owns %d", w, n)
			}
			t.Logf("%d workers: %v", len(workers), count)
		})
	}
}

// A worker leaving moves only its robots, spread over the others; a worker
// joining takes only robots, about its share, from every other.
func TestOwnerMovement(t *testing.T) {
	robots := robotNamesN(10_000)
	three := []string{"w1", "w2", "w3"}
	before := owners(robots, three)

	after := owners(robots, []string{"w1", "w3"})
	movedTo := map[string]int{}
	for _, r := range robots {
		if before[r] != "w2" {
			require.Equal(t, before[r], after[r], "robot %s of a staying worker does not move", r)
			continue
		}
		movedTo[after[r]]++
	}
	require.Equal(t, 2, len(movedTo))
	require.InDelta(t, movedTo["w1"], movedTo["w3"], 0.15*float64(movedTo["w1"]), "w2's robots spread: %v", movedTo)

	joined := owners(robots, []string{"w1", "w2", "w3", "w4"})
	taken := map[string]int{}
	for _, r := range robots {
		if joined[r] != before[r] {
			require.Equal(t, "w4", joined[r], "a robot moves only to the joining worker")
			taken[before[r]]++
		}
	}
	require.InDelta(t, 2500, taken["w1"]+taken["w2"]+taken["w3"], 125, "w4 takes a quarter")
	for _, w := range three {
		require.InDelta(t, 833, taken[w], 125, "taken from %s: %v", w, taken)
	}
}

// Three owners over one Presence: every robot owned by exactly one; a
// worker that expires or leaves hands its robots to the others (who
// rescan once), the others' robots stay where they are.
func TestOwnerFollowsPresence(t *testing.T) {
	robots := robotNamesN(3000)
	type env struct {
		p       ledger.Presence
		ttl     time.Duration
		advance func(time.Duration)
	}
	impls := map[string]func(t *testing.T) env{
		"memory": func(*testing.T) env {
			var mu sync.Mutex
			now := time.UnixMilli(1_700_000_000_000)
			p := ledger.NewMemoryClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
			return env{p: p, ttl: 3 * time.Second, advance: func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }}
		},
		"redis": func(t *testing.T) env {
			rdb, prefix := testenv.Redis(t)
			return env{p: ledger.NewRedis(rdb, prefix, time.Minute), ttl: 800 * time.Millisecond, advance: time.Sleep}
		},
	}
	for name, mk := range impls {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := mk(t)
			ids := []string{"w1", "w2", "w3"}
			own := map[string]*owner{}
			rescans := map[string]int{}
			for _, id := range ids {
				own[id] = &owner{self: id, rescan: func() { rescans[id]++ }}
			}
			refresh := func(id string, leaving bool) {
				t.Helper()
				_, err := own[id].refresh(ctx, e.p, ledger.Announcement{Worker: id, Robots: robots, Leaving: leaving, TTL: e.ttl})
				require.NoError(t, err)
			}
			// partition checks that each robot has exactly one owner among
			// live, and returns who.
			partition := func(live ...string) map[string]string {
				t.Helper()
				got := map[string]string{}
				for _, r := range robots {
					for _, id := range live {
						if own[id].Owns(r) {
							require.Empty(t, got[r], "robot %s owned twice", r)
							got[r] = id
						}
					}
					require.NotEmpty(t, got[r], "robot %s owned by nobody", r)
				}
				return got
			}

			require.True(t, own["w1"].Owns(robots[0]), "before a view: owns all")
			for _, id := range ids {
				refresh(id, false)
			}
			for _, id := range ids {
				refresh(id, false) // now every owner sees all three
			}
			require.Equal(t, map[string]int{"w1": 1, "w2": 1}, rescans, "w1 first saw itself alone, w2 itself and w1: each saw the others join once; w3 saw all three at once")
			first := partition(ids...)
			require.Equal(t, owners(robots, ids), first)

			// w3 stops announcing (killed): gone after its TTL.
			clear(rescans)
			e.advance(e.ttl / 2)
			refresh("w1", false)
			refresh("w2", false)
			e.advance(e.ttl/2 + e.ttl/10)
			refresh("w1", false)
			refresh("w2", false)
			require.Equal(t, map[string]int{"w1": 1, "w2": 1}, rescans, "one rescan each when w3 expired")
			second := partition("w1", "w2")
			for _, r := range robots {
				if first[r] != "w3" {
					require.Equal(t, first[r], second[r], "robot %s stays", r)
				}
			}

			// w3 comes back, then drains: it leaves at once, not after a TTL.
			refresh("w3", false)
			refresh("w1", false)
			refresh("w2", false)
			require.Equal(t, first, partition(ids...), "w3 takes its share back")
			clear(rescans)
			refresh("w3", true)
			refresh("w1", false)
			refresh("w2", false)
			require.Equal(t, map[string]int{"w1": 1, "w2": 1, "w3": 1}, rescans)
			require.Equal(t, second, partition("w1", "w2"))
		})
	}
}

// failingPresence is a Presence that cannot be reached.
type failingPresence struct{}

func (failingPresence) Announce(context.Context, ledger.Announcement) error {
	return fmt.Errorf("%w: down", ledger.ErrUnavailable)
}
func (failingPresence) Members(context.Context) (*ledger.Members, error) {
	return nil, errors.New("down")
}

// A worker announces its robots and those it cannot serve; when the
// Presence is unreachable it keeps its last view.
func TestOwnerWorkerAnnounces(t *testing.T) {
	ctx := context.Background()
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	rdb, prefix := testenv.Redis(t)
	p := ledger.NewRedis(rdb, prefix, time.Minute)
	mk := func(name string, presence ledger.Presence, robots ...string) *Worker {
		t.Helper()
		var rbs []Robot
		for _, r := range robots {
			rb := Robot{}
			rb.Name, rb.Webhook = r, "http://127.0.0.1:1/"+r
			rb.Limit.Max, rb.Limit.Window = 20, time.Minute
			rbs = append(rbs, rb)
		}
		snd, err := delivery.New()
		require.NoError(t, err)
		w, err := New(js, Config{Robots: rbs, Sender: snd, Limiter: limiter.NewMemory(time.Now), Ledger: ledger.NewMemory(),
			Presence: presence, Name: name, SweepInterval: time.Second})
		require.NoError(t, err)
		w.owner = w.newOwner()
		return w
	}
	a := mk("a", p, "ops", "dev")
	b := mk("b", p, "dev")
	b.noConsumer.set("dev", errors.New("maximum consumers limit reached"))
	require.NotNil(t, a.announce(ctx))
	m := b.announce(ctx)
	require.NotNil(t, m)
	require.ElementsMatch(t, []string{a.holder, b.holder}, m.ServedBy("dev"))
	who, why, ok := m.Unserved("dev")
	require.True(t, ok)
	require.Equal(t, b.holder, who)
	require.Equal(t, "maximum consumers limit reached", why)
	owned := 0
	for _, w := range []*Worker{a, b} {
		require.NotNil(t, w.announce(ctx))
		if w.owner.Owns("dev") {
			owned++
		}
	}
	require.Equal(t, 1, owned, "dev has one owner")
	require.True(t, a.owner.Owns("ops"), "only a serves ops")

	var nilOwner ownership = mk("c", nil, "ops").owner
	require.Nil(t, nilOwner, "no Presence: nil ownership, owns all")

	down := mk("d", failingPresence{}, "ops")
	require.Nil(t, down.announce(ctx))
	require.True(t, down.owner.Owns("ops"), "no view yet: owns all")
	require.True(t, slices.Equal([]string{"ops"}, down.robotNames()))
}
