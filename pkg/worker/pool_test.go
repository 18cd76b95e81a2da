package worker_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
	"github.com/botrelay/botrelay/pkg/worker"
)

// addPool configures a robot pool of the given members (added before).
func (r *rig) addPool(name string, members ...string) {
	r.t.Helper()
	platform := ""
	for _, rb := range r.robots {
		if rb.Name == members[0] {
			platform = rb.Platform
		}
	}
	r.robots = append(r.robots, worker.Robot{Robot: delivery.Robot{Name: name, Platform: platform}, Pool: members})
}

// poolPost is one message a member took, in arrival order.
type poolPost struct {
	member, content string
	at              time.Time
}

// poolPosts merges the messages the members took by arrival time.
func (r *rig) poolPosts(members ...string) []poolPost {
	var out []poolPost
	for _, m := range members {
		for _, rc := range r.sim.Received(m) {
			out = append(out, poolPost{member: m, content: rc.Content, at: rc.At})
		}
	}
	slices.SortStableFunc(out, func(a, b poolPost) int { return a.at.Compare(b.at) })
	return out
}

// waitPool waits until want were taken by the members, in all, and the
// pool's subject is empty; it asserts each was taken exactly once, in
// publish order, and returns the posts.
func (r *rig) waitPool(pool string, members []string, want []string, timeout time.Duration) []poolPost {
	r.t.Helper()
	var got []poolPost
	testenv.Eventually(r.t, timeout, func() bool {
		got = r.poolPosts(members...)
		return len(got) >= len(want) && r.queuedFor(pool) == 0
	}, "pool %s: want %d messages taken", pool, len(want))
	contents := make([]string, len(got))
	for i, p := range got {
		contents[i] = p.content
	}
	require.Equal(r.t, want, contents, "each message exactly once, in publish order")
	return got
}

func perMember(posts []poolPost) map[string]int {
	n := map[string]int{}
	for _, p := range posts {
		n[p.member]++
	}
	return n
}

func poolMetric(t *testing.T, reg *prometheus.Registry, pool, robot string) float64 {
	t.Helper()
	return metricValue(t, reg, "botrelay_pool_member_state", map[string]string{"pool": pool, "robot": robot})
}

// requireWithinWindow asserts that no rolling window held more than max
// of rc.
func requireWithinWindow(t *testing.T, rc []robotsim.Received, max int, window time.Duration, robot string) {
	t.Helper()
	for i := max; i < len(rc); i++ {
		require.GreaterOrEqual(t, rc[i].At.Sub(rc[i-max].At), window, "%s: more than %d in a window", robot, max)
	}
}

var members3 = []string{"oncall-1", "oncall-2", "oncall-3"}

// Free members take turns: 30 messages to a pool of 3 are 10 each, in
// strict rotation, in publish order.
func TestPoolRotation(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	for _, m := range members3 {
		r.addRobot(robotsim.PlatformDingTalk, m, "sec", "sec", nil, dingLimit)
	}
	r.addPool("oncall", members3...)
	envs := r.publishN("oncall", "alert", 30)
	reg := prometheus.NewRegistry()
	r.startWorker(func(c *worker.Config) { c.Metrics = worker.NewMetrics(reg) })
	got := r.waitPool("oncall", members3, contents(envs), 30*time.Second)
	for i, p := range got {
		require.Equal(t, members3[i%3], p.member, "post %d", i)
	}
	require.Equal(t, map[string]int{"oncall-1": 10, "oncall-2": 10, "oncall-3": 10}, perMember(got))
	for _, m := range members3 {
		require.Equal(t, 1.0, poolMetric(t, reg, "oncall", m), m)
		require.Zero(t, r.sim.Stats(m).Breaches)
	}
	require.Empty(t, r.deadLetters())
	require.Equal(t, 30, r.countEvents("delivered"))
}

// The target on a scaled clock (window 1s, 20 per window, as
// DingTalk's 20 per minute): 150 messages at once to a pool of 3 are all
// delivered in about 2.5 windows (3× one robot: one robot needs 7.5), 50
// per member, none over its limit, in publish order.
//
// BOTRELAY_POOL_REALTIME=1 runs it at DingTalk's real figures (a minute,
// margin 5s, as config sets them): about 2m10s.
func TestPoolTargetThreeTimesOneRobot(t *testing.T) {
	const max, n = 20, 150
	window, margin := time.Second, 50*time.Millisecond
	if os.Getenv("BOTRELAY_POOL_REALTIME") != "" {
		window, margin = time.Minute, 5*time.Second
	}
	r := newRig(t, "", robotsim.Config{Window: window, Ban: 10 * window})
	lim := limiter.Limit{Max: max, Window: window, Margin: margin}
	for _, m := range members3 {
		r.addRobot(robotsim.PlatformDingTalk, m, "sec", "sec", nil, lim)
	}
	r.addPool("oncall", members3...)
	envs := r.publishN("oncall", "alert", n)
	start := time.Now()
	r.startWorker(nil)
	got := r.waitPool("oncall", members3, contents(envs), 5*window+time.Minute)
	took := time.Since(start)
	t.Logf("%d messages through a pool of 3 in %s (window %s, %d per window per member)", n, took, window, max)
	counts := perMember(got)
	t.Logf("per member: %v", counts)
	for _, m := range members3 {
		st := r.sim.Stats(m)
		require.Zero(t, st.Breaches, "%s: %+v", m, st)
		require.Zero(t, st.DuringBan, m)
		require.Equal(t, counts[m], st.Accepted, m)
		// The earliest slot wins, so the shares are about equal (a
		// member whose window frees first may take one more).
		require.InDelta(t, n/3, counts[m], 3, m)
		requireWithinWindow(t, r.sim.Received(m), max, window, m)
	}
	// 60 at once, 60 a window later, 30 two windows later: at least two
	// windows, and well under the 7 windows one robot would need.
	span := got[n-1].at.Sub(got[0].at)
	require.GreaterOrEqual(t, span, 2*window, "no member over its limit")
	require.Less(t, took, 3*window+window/2, "three members' budget used")
}

// A member the platform throttled is skipped until its cool-off ends: the
// message goes to the next member at once, no request reaches the
// throttled one meanwhile, and it takes its turn again afterwards.
func TestPoolSkipsCoolingMember(t *testing.T) {
	const coolOff = 3 * time.Second
	r := newRig(t, "", robotsim.Config{})
	for _, m := range members3 {
		r.addRobot(robotsim.PlatformDingTalk, m, "sec", "sec", nil, dingLimit)
		r.robots[len(r.robots)-1].CoolOff = coolOff
	}
	r.addPool("oncall", members3...)
	r.sim.InjectFault("oncall-1", robotsim.Fault{Body: `{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`})
	envs := r.publishN("oncall", "alert", 12)
	start := time.Now()
	r.startWorker(nil)
	got := r.waitPool("oncall", members3, contents(envs), 30*time.Second)
	require.Less(t, time.Since(start), coolOff, "nobody waited for the cool-off")
	require.Equal(t, map[string]int{"oncall-2": 6, "oncall-3": 6}, perMember(got), "the throttled member skipped")
	reqs := r.sim.Requests("oncall-1")
	require.Len(t, reqs, 1, "only the throttled request reached oncall-1: %+v", reqs)
	require.Equal(t, 1, r.countEvents("throttled"))

	// After its cool-off it is back in turn.
	time.Sleep(time.Until(start.Add(coolOff + 200*time.Millisecond)))
	more := r.publishN("oncall", "later", 3)
	all := r.waitPool("oncall", members3, append(contents(envs), contents(more)...), 30*time.Second)
	require.Equal(t, map[string]int{"oncall-1": 1, "oncall-2": 7, "oncall-3": 7}, perMember(all))
	require.Empty(t, r.deadLetters())
}

// A member that fails for a reason of its own (its secret is wrong: sign
// not match) is taken out of rotation after one refused request: that
// message goes to another member, exactly once, no attempt of it spent,
// and the metric says the member is out.
func TestPoolMemberOutOnItsOwnFailure(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformDingTalk, "oncall-1", "sec", "sec", nil, dingLimit)
	r.addRobot(robotsim.PlatformDingTalk, "oncall-2", "sec", "not-the-secret", nil, dingLimit)
	r.addRobot(robotsim.PlatformDingTalk, "oncall-3", "sec", "sec", nil, dingLimit)
	r.addPool("oncall", members3...)
	envs := r.publishN("oncall", "alert", 9)
	reg := prometheus.NewRegistry()
	r.startWorker(func(c *worker.Config) { c.Metrics = worker.NewMetrics(reg) })
	got := r.waitPool("oncall", members3, contents(envs), 30*time.Second)
	require.Equal(t, map[string]int{"oncall-1": 5, "oncall-3": 4}, perMember(got))
	require.Equal(t, "oncall-3", got[1].member, "the refused message went to the next member")
	reqs := r.sim.Requests("oncall-2")
	require.Len(t, reqs, 1, "one refused request, then out of rotation")
	require.Equal(t, robotsim.RequestRefused, reqs[0].Outcome)
	require.Equal(t, 0.0, poolMetric(t, reg, "oncall", "oncall-2"))
	require.Equal(t, 1.0, poolMetric(t, reg, "oncall", "oncall-1"))
	require.Equal(t, 1.0, poolMetric(t, reg, "oncall", "oncall-3"))
	outs := r.eventsOf("member_out")
	require.Len(t, outs, 1)
	require.Equal(t, envs[1].ID, outs[0].EnvelopeID)
	require.Equal(t, "sign not match", outs[0].Result.Reason)
	evs := r.eventsFor(envs[1].ID)
	last := evs[len(evs)-1]
	require.Equal(t, "delivered", last.Kind)
	require.Equal(t, "oncall", last.Robot, "events are the pool's")
	require.Equal(t, 1, last.Attempts, "the member's failure spent no attempt of the message")
	require.Empty(t, r.deadLetters())
}

// A member out of rotation is tried again after PoolRetry; once it
// answers, it takes its turns again.
func TestPoolMemberBackAfterPoolRetry(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	for _, m := range members3 {
		r.addRobot(robotsim.PlatformDingTalk, m, "sec", "sec", nil, dingLimit)
	}
	r.addPool("oncall", members3...)
	r.sim.InjectFault("oncall-1", robotsim.Fault{Body: `{"errcode":400102,"errmsg":"robot is disabled"}`})
	reg := prometheus.NewRegistry()
	r.startWorker(func(c *worker.Config) { c.Metrics = worker.NewMetrics(reg); c.PoolRetry = time.Second })
	first := r.publishN("oncall", "first", 4)
	got := r.waitPool("oncall", members3, contents(first), 30*time.Second)
	require.Equal(t, map[string]int{"oncall-2": 2, "oncall-3": 2}, perMember(got))
	require.Equal(t, 0.0, poolMetric(t, reg, "oncall", "oncall-1"))
	time.Sleep(1200 * time.Millisecond)
	second := r.publishN("oncall", "second", 3)
	all := r.waitPool("oncall", members3, append(contents(first), contents(second)...), 30*time.Second)
	require.Equal(t, map[string]int{"oncall-1": 1, "oncall-2": 3, "oncall-3": 3}, perMember(all))
	require.Equal(t, 1.0, poolMetric(t, reg, "oncall", "oncall-1"), "back in rotation")
}

// A failure of the message (keywords not in content: the platform's
// answer, the worker knowing no keywords) dead-letters it as for a robot:
// one request, no member taken out, the dead letter the pool's.
func TestPoolMessageFailureDeadLetters(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	for _, m := range members3 {
		require.NoError(t, r.sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: m, Secret: "sec", Keywords: []string{"告警"}}))
		r.robots = append(r.robots, worker.Robot{
			Robot: delivery.Robot{Name: m, Platform: robotsim.PlatformDingTalk, Webhook: r.sim.WebhookURL(m), Secret: "sec"},
			Limit: dingLimit, CoolOff: time.Second})
	}
	r.addPool("oncall", members3...)
	bad := envelope.New("oncall", text("no keyword here"))
	good := envelope.New("oncall", text("告警: disk full"))
	r.publish(bad)
	r.publish(good)
	reg := prometheus.NewRegistry()
	r.startWorker(func(c *worker.Config) { c.Metrics = worker.NewMetrics(reg) })
	es := r.waitDeadExactly(1, 30*time.Second)
	require.Equal(t, deadletter.ReasonPermanent, es[0].Record.Reason)
	require.Equal(t, "oncall", es[0].Record.Robot)
	require.Equal(t, bad.ID, es[0].Record.Envelope.ID)
	require.Equal(t, 310000, es[0].Record.ErrCode)
	require.Equal(t, "keywords not in content", es[0].Record.Detail)
	got := r.waitPool("oncall", members3, []string{"告警: disk full"}, 30*time.Second)
	require.Equal(t, "oncall-2", got[0].member, "the next message takes the next turn")
	total := 0
	for _, m := range members3 {
		total += r.sim.Stats(m).Requests
		require.Equal(t, 1.0, poolMetric(t, reg, "oncall", m), "%s stays in rotation", m)
	}
	require.Equal(t, 2, total, "one request per message")
	require.Zero(t, r.countEvents("member_out"))
}

// With every member out of rotation, the message is dead-lettered with the
// last member's reason, and the next without a request.
func TestPoolAllMembersOutDeadLetters(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformDingTalk, "pair-1", "sec", "wrong", nil, dingLimit)
	r.addRobot(robotsim.PlatformDingTalk, "pair-2", "sec", "", nil, dingLimit)
	r.sim.InjectFault("pair-2", robotsim.Fault{Body: `{"errcode":300001,"errmsg":"token is not exist"}`})
	r.addPool("pair", "pair-1", "pair-2")
	a, b := envelope.New("pair", text("first")), envelope.New("pair", text("second"))
	r.publish(a)
	r.publish(b)
	reg := prometheus.NewRegistry()
	r.startWorker(func(c *worker.Config) { c.Metrics = worker.NewMetrics(reg) })
	es := r.waitDeadExactly(2, 30*time.Second)
	for i, env := range []*envelope.Envelope{a, b} {
		rec := es[i].Record
		require.Equal(t, env.ID, rec.Envelope.ID)
		require.Equal(t, "pair", rec.Robot)
		require.Equal(t, deadletter.ReasonPermanent, rec.Reason)
		require.Equal(t, "pool pair: no member left in rotation; last out, pair-2: token does not exist", rec.Detail)
		require.Equal(t, 300001, rec.ErrCode)
	}
	require.Equal(t, 1, r.sim.Stats("pair-1").Requests)
	require.Equal(t, 1, r.sim.Stats("pair-2").Requests)
	require.Equal(t, 0.0, poolMetric(t, reg, "pair", "pair-1"))
	require.Equal(t, 0.0, poolMetric(t, reg, "pair", "pair-2"))
	require.Equal(t, 2, r.countEvents("member_out"))
}

// A member addressed directly and through its pool shares one window:
// messages to both at once, on a scaled clock, are all delivered with no
// breach and no member over its limit in any rolling window.
func TestPoolMemberAddressedDirectlySharesItsWindow(t *testing.T) {
	const window = time.Second
	lim := limiter.Limit{Max: 5, Window: window, Margin: 50 * time.Millisecond}
	r := newRig(t, "", robotsim.Config{Window: window, Ban: time.Minute})
	r.addRobot(robotsim.PlatformDingTalk, "duo-1", "sec", "sec", nil, lim)
	r.addRobot(robotsim.PlatformDingTalk, "duo-2", "sec", "sec", nil, lim)
	r.addPool("duo", "duo-1", "duo-2")
	pooled := r.publishN("duo", "pooled", 20)
	direct := r.publishN("duo-1", "direct", 10)
	start := time.Now()
	r.startWorker(nil)
	r.startWorker(nil)
	testenv.Eventually(t, time.Minute, func() bool {
		return len(r.sim.Received("duo-1"))+len(r.sim.Received("duo-2")) >= 30 && r.outPending() == 0
	}, "every message delivered")
	t.Logf("30 messages over 2 members sharing windows in %s", time.Since(start))
	for _, m := range []string{"duo-1", "duo-2"} {
		st := r.sim.Stats(m)
		require.Zero(t, st.Breaches, "%s: %+v", m, st)
		require.Zero(t, st.DuringBan, m)
		requireWithinWindow(t, r.sim.Received(m), lim.Max, window, m)
	}
	// Each message exactly once; the pool's and duo-1's own each in order.
	var pool, own []string
	for _, p := range r.poolPosts("duo-1", "duo-2") {
		if len(p.content) > 6 && p.content[:6] == "direct" {
			own = append(own, p.content)
		} else {
			pool = append(pool, p.content)
		}
	}
	require.Equal(t, contents(pooled), pool)
	require.Equal(t, contents(direct), own)
	require.Equal(t, 30, r.sim.Stats("duo-1").Accepted+r.sim.Stats("duo-2").Accepted)
	require.Empty(t, r.deadLetters())
}

// A pool's configuration is checked by New.
func TestPoolConfigErrors(t *testing.T) {
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	robot := func(name, platform string) worker.Robot {
		return worker.Robot{Robot: delivery.Robot{Name: name, Platform: platform, Webhook: "https://example.invalid/" + name}, Limit: dingLimit}
	}
	pool := func(name string, members ...string) worker.Robot {
		return worker.Robot{Robot: delivery.Robot{Name: name}, Pool: members}
	}
	tests := []struct {
		name   string
		robots []worker.Robot
		want   string
	}{
		{"unknown member", []worker.Robot{robot("a", "dingtalk"), pool("p", "a", "b")}, `pool "p": member "b" is not a configured robot`},
		{"mixed platforms", []worker.Robot{robot("a", "dingtalk"), robot("b", "popo"), pool("p", "a", "b")}, `pool "p" mixes platforms dingtalk and popo`},
		{"a robot in two pools", []worker.Robot{robot("a", "dingtalk"), pool("p", "a"), pool("q", "a")}, `robot "a" is a member of pools "p" and "q"`},
		{"a pool in a pool", []worker.Robot{robot("a", "dingtalk"), pool("p", "a"), pool("q", "p")}, `pool "q": member "p" is a pool`},
		{"name clash", []worker.Robot{robot("a", "dingtalk"), pool("a", "a")}, `robot "a" configured twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := worker.New(js, worker.Config{Robots: tt.robots, Sender: newSender(t),
				Limiter: limiter.NewMemory(nil), Ledger: ledger.NewMemory()})
			require.ErrorIs(t, err, worker.ErrInvalidConfig)
			require.ErrorContains(t, err, tt.want)
		})
	}
	_, err := worker.New(js, worker.Config{Robots: []worker.Robot{robot("a", "dingtalk"), robot("b", "dingtalk"), pool("p", "a", "b")},
		Sender: newSender(t), Limiter: limiter.NewMemory(nil), Ledger: ledger.NewMemory()})
	require.NoError(t, err, "a valid pool")
}

// A request left without an answer (the connection dropped after the
// write: the platform may have the message) is retried through the same
// member, whose platform robot drops a repeat by msgUuid; another member
// would post it a second time.
func TestPoolUnansweredRequestStaysWithItsMember(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	for _, m := range members3 {
		r.addRobot(robotsim.PlatformDingTalk, m, "sec", "sec", nil, dingLimit)
	}
	r.addPool("oncall", members3...)
	r.sim.InjectFault("oncall-1", robotsim.Fault{Drop: true})
	envs := r.publishN("oncall", "alert", 4)
	r.startWorker(nil)
	got := r.waitPool("oncall", members3, contents(envs), 30*time.Second)
	require.Equal(t, "oncall-1", got[0].member, "the retry went to the member that had the unanswered request")
	require.Equal(t, []string{"oncall-1", "oncall-2", "oncall-3", "oncall-1"},
		[]string{got[0].member, got[1].member, got[2].member, got[3].member})
	reqs := r.sim.Requests("oncall-1")
	require.Len(t, reqs, 3, "the dropped request, its retry, the fourth message")
	require.Equal(t, robotsim.RequestFaulted, reqs[0].Outcome)
	require.Equal(t, 1, r.countEvents("retry"))
	require.Empty(t, r.deadLetters())
}

// Members of one pool may have different security keywords (each robot of
// a chat group has its own): a message goes only to a member whose
// keyword it carries — never dead-lettered as "missing keyword" because
// the rotation picked a member of another keyword — and is dead-lettered
// only when it carries none of the members'.
func TestPoolMembersWithDifferentKeywords(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformDingTalk, "kw-a", "sec", "sec", []string{"告警"}, dingLimit)
	r.addRobot(robotsim.PlatformDingTalk, "kw-b", "sec", "sec", []string{"alert"}, dingLimit)
	r.addPool("kwpool", "kw-a", "kw-b")
	var want []string
	for i := range 6 {
		env := envelope.New("kwpool", text(fmt.Sprintf("告警 disk %d", i)))
		want = append(want, env.Message.Text.Content)
		r.publish(env)
	}
	none := envelope.New("kwpool", text("neither keyword"))
	r.publish(none)
	r.startWorker(nil)
	got := r.waitPool("kwpool", []string{"kw-a", "kw-b"}, want, 30*time.Second)
	require.Equal(t, map[string]int{"kw-a": 6}, perMember(got), "only the member whose keyword the messages carry")
	es := r.waitDeadExactly(1, 10*time.Second)
	require.Equal(t, none.ID, es[0].Record.Envelope.ID)
	require.Equal(t, deadletter.ReasonMissingKeyword, es[0].Record.Reason)
	require.Zero(t, r.sim.Stats("kw-b").Requests)
}

// Every member of a pool throttled at once: the pool waits for the first
// cool-off to end (no busy loop of requests, no dead letter), then
// delivers each message exactly once, in order.
func TestPoolAllMembersCoolingWaits(t *testing.T) {
	const coolOff = 2 * time.Second
	r := newRig(t, "", robotsim.Config{})
	two := []string{"cool-1", "cool-2"}
	for _, m := range two {
		r.addRobot(robotsim.PlatformDingTalk, m, "sec", "sec", nil, dingLimit)
		r.robots[len(r.robots)-1].CoolOff = coolOff
		r.sim.InjectFault(m, robotsim.Fault{Body: `{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`})
	}
	r.addPool("coolpool", two...)
	envs := r.publishN("coolpool", "alert", 4)
	start := time.Now()
	r.startWorker(nil)
	got := r.waitPool("coolpool", two, contents(envs), 30*time.Second)
	require.GreaterOrEqual(t, time.Since(start), coolOff, "waited for a cool-off")
	require.Len(t, got, 4)
	require.Equal(t, 6, r.sim.Stats("cool-1").Requests+r.sim.Stats("cool-2").Requests, "two throttled requests, then one per message")
	require.Empty(t, r.deadLetters())
	for _, m := range two {
		require.Zero(t, r.sim.Stats(m).Breaches)
	}
}

// A worker died between a pool member's post and recording it: the
// ledger has its claim, the lease ended without an outcome, and the
// member it posted through (recorded with the claim). The next worker
// takes the message over and reposts it through that member, whose
// platform robot drops the repeat by msgUuid; another member, free at
// once while that one's window is full, would post it a second time in
// the group. (The state is made as the dead worker left it: its claim,
// its post, its grant.)
func TestPoolRepostAfterACrashGoesToTheSameMember(t *testing.T) {
	r := newRig(t, "", robotsim.Config{Window: 3 * time.Second})
	pair := []string{"pair-1", "pair-2", "pair-3"}
	one := limiter.Limit{Max: 1, Window: 3 * time.Second, Margin: 100 * time.Millisecond}
	var members []worker.Robot
	for _, m := range pair {
		members = append(members, r.addRobot(robotsim.PlatformDingTalk, m, "sec", "sec", nil, one))
	}
	r.addPool("pair", pair...)
	env := envelope.New("pair", text("alert"))
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: r.redisAddr()})
	t.Cleanup(func() { _ = rdb.Close() })
	led := ledger.NewRedis(rdb, r.prefix, time.Hour)
	lim, err := limiter.NewRedis(rdb, limiter.WithPrefix(r.prefix))
	require.NoError(t, err)
	// The dead worker: its claim through pair-3 (the last member, to whom
	// no tie goes), its grant, its post.
	c, _, err := led.ClaimMember(ctx, stream.MsgID("pair", env.ID), "dead/1", "pair-3", 50*time.Millisecond, false)
	require.NoError(t, err)
	require.Equal(t, ledger.Claimed, c)
	d, err := lim.Reserve(ctx, "pair-3", one)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	snd, err := delivery.New()
	require.NoError(t, err)
	require.Equal(t, delivery.Success, snd.Deliver(ctx, members[2].Robot, env).Outcome)
	r.publish(env)
	time.Sleep(100 * time.Millisecond) // the lease is over

	// The member's window (3s) is longer than HoldMax: the repost waits
	// for it all the same, never handed back to be read again without
	// knowing the member.
	r.startWorker(func(c *worker.Config) { c.HoldMax = 500 * time.Millisecond })
	testenv.Eventually(t, 30*time.Second, func() bool { return r.queuedFor("pair") == 0 }, "settled")
	reqs := r.sim.Requests("pair-3")
	require.Len(t, reqs, 2, "posted, then reposted through the same member")
	require.Equal(t, robotsim.RequestAccepted, reqs[0].Outcome)
	require.Equal(t, robotsim.RequestDuplicate, reqs[1].Outcome, "dropped by msgUuid")
	require.GreaterOrEqual(t, reqs[1].At.Sub(reqs[0].At), 2*time.Second, "waited for the member's window")
	require.Empty(t, r.sim.Requests("pair-1"), "no other member had it")
	require.Empty(t, r.sim.Requests("pair-2"), "no other member had it")
	require.Equal(t, 1, r.countEvents("repost"))
	require.Empty(t, r.deadLetters())
}
