package worker_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// tokenRE finds the numbered tokens of the digest tests' messages.
var tokenRE = regexp.MustCompile(`msg-\d{4}`)

// digestRobot adds a DingTalk robot with a digest policy.
func (r *rig) digestRobot(name string, keywords []string, lim limiter.Limit, d worker.Digest) {
	r.t.Helper()
	r.addRobot(robotsim.PlatformDingTalk, name, "sec", "sec", keywords, lim)
	r.robots[len(r.robots)-1].Digest = &d
}

// publishTokens publishes n text messages "<kw>msg-<i> <pad>" to robot
// and returns their tokens in order.
func (r *rig) publishTokens(robot, kw string, from, n int, pad string, opts ...envelope.Option) []string {
	r.t.Helper()
	envs := make([]*envelope.Envelope, n)
	tokens := make([]string, n)
	for i := range n {
		tokens[i] = fmt.Sprintf("msg-%04d", from+i)
		envs[i] = envelope.New(robot, text(kw+tokens[i]+" "+pad), opts...)
	}
	_, err := r.pub.PublishAll(context.Background(), envs)
	require.NoError(r.t, err)
	return tokens
}

// accepted returns the robot's accepted posts, in order.
func (r *rig) accepted(robot string) []robotsim.Received { return r.sim.Received(robot) }

// tokensPosted returns every token in the robot's accepted posts, in
// order of the posts and of their entries.
func tokensPosted(posts []robotsim.Received) []string {
	var out []string
	for _, p := range posts {
		out = append(out, tokenRE.FindAllString(p.Content, -1)...)
	}
	return out
}

// waitTokens waits until every token was posted and nothing is left in
// the robot's subject, then asserts every token was posted exactly once,
// in publish order, and returns the accepted posts.
func (r *rig) waitTokens(robot string, want []string, timeout time.Duration) []robotsim.Received {
	r.t.Helper()
	testenv.Eventually(r.t, timeout, func() bool {
		return len(tokensPosted(r.accepted(robot))) >= len(want) && r.queuedFor(robot) == 0
	}, "all %d messages posted", len(want))
	posts := r.accepted(robot)
	require.Equal(r.t, want, tokensPosted(posts), "each message exactly once, in publish order")
	return posts
}

// digestPosts returns the posts that are digests (markdown).
func digestPosts(posts []robotsim.Received) []robotsim.Received {
	var out []robotsim.Received
	for _, p := range posts {
		if p.MsgType == "markdown" {
			out = append(out, p)
		}
	}
	return out
}

// The target on a clock scaled 1/20 (a minute is 3s): 1,000
// messages to one DingTalk robot (20 per minute) published within 10 s are
// all visible in the group within 90 s (4.5s), in at most 25 posts, each
// message exactly once and in order, with no breach.
// BOTRELAY_DIGEST_SCALE=1 runs it in real time (about 30 s).
func TestDigestThousandMessagesTarget(t *testing.T) {
	scale := 20
	if v := os.Getenv("BOTRELAY_DIGEST_SCALE"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		scale = n
	}
	minute := time.Minute / time.Duration(scale)
	r := newRig(t, "", robotsim.Config{Window: minute, Ban: 10 * minute})
	r.digestRobot("alerts", []string{"告警"}, limiter.Limit{Max: 20, Window: minute, Margin: 50 * time.Millisecond},
		worker.Digest{After: 30 * time.Second / time.Duration(scale), Title: "告警 digest"})
	reg := prometheus.NewRegistry()
	r.startWorker(func(c *worker.Config) { c.Metrics = worker.NewMetrics(reg) })
	start := time.Now()
	var tokens []string
	for b := range 20 { // 50 every scaled half second: 1,000 within the scaled 10 s
		tokens = append(tokens, r.publishTokens("alerts", "告警 ", 50*b, 50, "disk usage above 90% on host db-17")...)
		if b < 19 {
			time.Sleep(time.Second / 2 / time.Duration(scale))
		}
	}
	published := time.Since(start)
	require.Less(t, published, 3*10*time.Second/time.Duration(scale), "published over about the scaled 10 s (a slow machine, -race)")
	posts := r.waitTokens("alerts", tokens, 90*time.Second/time.Duration(scale)+2*time.Second)
	for _, p := range posts {
		t.Logf("post at %.2fs: %d entries", p.At.Sub(start).Seconds(), len(tokenRE.FindAllString(p.Content, -1)))
	}
	last := posts[len(posts)-1].At
	t.Logf("1,000 messages: %d posts (%d digests), last %.2fs after the first publish (scaled: %.0fs), published in %s",
		len(posts), len(digestPosts(posts)), last.Sub(start).Seconds(), last.Sub(start).Seconds()*float64(scale), published)
	require.LessOrEqual(t, last.Sub(start), 90*time.Second/time.Duration(scale), "every message visible within the scaled 90 s")
	require.LessOrEqual(t, len(posts), 25)
	ds := digestPosts(posts)
	folded := 0
	for _, p := range ds {
		folded += len(tokenRE.FindAllString(p.Content, -1))
	}
	require.Equal(t, 1000, folded+len(posts)-len(ds), "the folded and the single posts make up every message")
	require.EqualValues(t, len(ds), metricValue(t, reg, "botrelay_digests_total", map[string]string{"robot": "alerts"}))
	require.EqualValues(t, folded, metricValue(t, reg, "botrelay_digest_items_total", map[string]string{"robot": "alerts"}))
	st := r.sim.Stats("alerts")
	require.Zero(t, st.Breaches)
	require.Zero(t, st.Rejected)
	require.Zero(t, st.Duplicates)
	for _, p := range digestPosts(posts) {
		require.Contains(t, p.Title, "告警 digest: ")
		require.Regexp(t, `^告警 digest: \d+ messages, \d\d:\d\d:\d\d–\d\d:\d\d:\d\d$`, p.Title)
		n := len(tokenRE.FindAllString(p.Content, -1))
		require.Contains(t, p.Title, fmt.Sprintf(": %d messages", n), "the title counts the entries")
		require.LessOrEqual(t, len(p.Body), envelope.MaxContentBytes)
	}
}

// Long messages fold into several digests, none over DingTalk's 20,000
// bytes, none cut away; max_items bounds a digest; mentions are the union
// of the folded messages' and the title carries the robot's keyword.
func TestDigestSizeItemsMentions(t *testing.T) {
	r := newRig(t, "", robotsim.Config{Window: 2 * time.Second, Ban: time.Minute})
	lim := limiter.Limit{Max: 3, Window: 2 * time.Second, Margin: 50 * time.Millisecond}
	r.digestRobot("big", []string{"告警"}, lim, worker.Digest{After: 300 * time.Millisecond, Title: "告警 summary"})
	r.digestRobot("few", nil, lim, worker.Digest{After: 300 * time.Millisecond, MaxItems: 7})
	r.digestRobot("at", nil, lim, worker.Digest{After: 300 * time.Millisecond})
	r.addRobot(robotsim.PlatformPOPO, "popo", "sec", "sec", []string{"告警"}, lim)
	r.robots[len(r.robots)-1].Digest = &worker.Digest{After: 300 * time.Millisecond, Title: "告警 digest"}
	long := strings.Repeat("磁盘空间不足", 100) // 1,800 bytes: an entry keeps 300
	big := r.publishTokens("big", "告警 ", 0, 150, long)
	few := r.publishTokens("few", "", 0, 30, "short")
	popo := r.publishTokens("popo", "告警 ", 0, 120, long)
	// Mentions: a mobile twice, a user id, everyone once.
	var at []string
	for i, m := range []*envelope.At{{Mobiles: []string{"13800000001"}}, {Mobiles: []string{"13800000001", "13800000002"}},
		{UserIDs: []string{"u-7"}}, nil, {All: true}, nil} {
		var opts []envelope.Option
		if m != nil {
			opts = append(opts, envelope.WithAt(*m))
		}
		at = append(at, r.publishTokens("at", "", i, 1, "mention", opts...)...)
	}
	r.startWorker(nil) // after the publish: the lanes see their whole backlog at once

	posts := r.waitTokens("big", big, 30*time.Second)
	require.GreaterOrEqual(t, len(digestPosts(posts)), 3, "150 entries of ~315 bytes need at least 3 digests")
	for _, p := range posts {
		require.LessOrEqual(t, len(p.Body), envelope.MaxContentBytes, "no post over the platform's limit")
		require.True(t, strings.Contains(p.Title, "告警") || strings.Contains(p.Content, "告警"))
	}
	for _, p := range digestPosts(posts) {
		require.True(t, strings.HasPrefix(p.Title, "告警 summary: "), p.Title)
	}

	posts = r.waitTokens("few", few, 30*time.Second)
	for _, p := range digestPosts(posts) {
		require.LessOrEqual(t, len(tokenRE.FindAllString(p.Content, -1)), 7, "max_items")
		require.True(t, strings.HasPrefix(p.Title, envelope.DefaultDigestTitle+": "), p.Title)
	}

	posts = r.waitTokens("at", at, 30*time.Second)
	ds := digestPosts(posts)
	require.Len(t, ds, 1, "six messages waiting, three slots: one digest of all")
	require.ElementsMatch(t, []string{"13800000001", "13800000002"}, ds[0].AtMobiles)
	require.Equal(t, []string{"u-7"}, ds[0].AtUserIDs)
	require.True(t, ds[0].AtAll, "all, since one folded message mentions everyone")
	// POPO takes text: the digest's markdown as text, title first, within
	// the same size limit.
	posts = r.waitTokens("popo", popo, 30*time.Second)
	require.GreaterOrEqual(t, len(posts), 2)
	for _, p := range posts {
		require.LessOrEqual(t, len(p.Body), envelope.MaxContentBytes)
		if strings.Count(p.Content, "msg-") > 1 {
			require.True(t, strings.HasPrefix(p.Content, "告警 digest: "), p.Content[:40])
		}
	}
	for _, s := range []string{"big", "few", "at", "popo"} {
		require.Zero(t, r.sim.Stats(s).Breaches, s)
	}
}

// Without budget trouble nothing is folded: a digest robot with room in
// its window posts each message alone, like any robot.
func TestDigestNotNeeded(t *testing.T) {
	r := newRig(t, "", robotsim.Config{Window: 2 * time.Second, Ban: time.Minute})
	r.digestRobot("calm", nil, limiter.Limit{Max: 20, Window: 2 * time.Second, Margin: 50 * time.Millisecond},
		worker.Digest{After: 5 * time.Second})
	r.startWorker(nil)
	tokens := r.publishTokens("calm", "", 0, 5, "x")
	posts := r.waitTokens("calm", tokens, 20*time.Second)
	require.Len(t, posts, 5)
	require.Empty(t, digestPosts(posts))
}

// A digest the platform refuses for good dead-letters each folded message
// with reason digest and the digest's errcode; one replayed dead letter
// is posted again.
func TestDigestDeadLettered(t *testing.T) {
	r := newRig(t, "", robotsim.Config{Window: 2 * time.Second, Ban: time.Minute})
	r.digestRobot("refused", nil, limiter.Limit{Max: 2, Window: 2 * time.Second, Margin: 50 * time.Millisecond},
		worker.Digest{After: 200 * time.Millisecond})
	tokens := r.publishTokens("refused", "", 0, 8, "x")
	r.sim.InjectFault("refused", robotsim.Fault{Body: `{"errcode":430104,"errmsg":"content rejected"}`})
	r.startWorker(nil)
	es := r.waitDeadExactly(8, 20*time.Second)
	require.Empty(t, r.accepted("refused"))
	byToken := map[string]deadletter.Entry{}
	for _, e := range es {
		require.Equal(t, deadletter.ReasonDigest, e.Record.Reason)
		require.Equal(t, 430104, e.Record.ErrCode)
		require.Contains(t, e.Record.Detail, "folded into digest digest-")
		require.NotNil(t, e.Record.Envelope)
		byToken[tokenRE.FindString(e.Record.Envelope.Message.Text.Content)] = e
	}
	require.Len(t, byToken, 8, "one dead letter per folded message")
	_, err := deadletter.Replay(context.Background(), r.js, r.topo, byToken[tokens[3]].Seq, true)
	require.NoError(t, err)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(r.accepted("refused")) == 1 }, "the replayed message posted")
	require.Equal(t, []string{tokens[3]}, tokensPosted(r.accepted("refused")))
}

// crashingSender posts the first digest for real, then cuts its worker's
// NATS connection and reports no answer: the worker died between the
// platform's answer and the acks.
type crashingSender struct {
	worker.Sender
	crash   func()
	crashed atomic.Bool
	digest  atomic.Value // the id of the digest it posted
}

func (s *crashingSender) Deliver(ctx context.Context, rb delivery.Robot, env *envelope.Envelope) delivery.Result {
	res := s.Sender.Deliver(ctx, rb, env)
	if strings.HasPrefix(env.ID, "digest-") && res.Outcome == delivery.Success && s.crashed.CompareAndSwap(false, true) {
		s.digest.Store(env.ID)
		s.crash()
		return delivery.Result{Outcome: delivery.Retryable, Reason: "connection lost (test)"}
	}
	return res
}

// A worker dies between the platform's acceptance of a digest and the
// acks; more messages arrive; a second worker picks the items up again and
// posts the same digest (same id, so DingTalk's msgUuid drops it), never a
// second, different digest of them; every message is posted exactly once.
func TestDigestCrashBetweenPostAndAcks(t *testing.T) {
	r := newRig(t, "", robotsim.Config{Window: 2 * time.Second, Ban: time.Minute})
	r.digestRobot("crash", nil, limiter.Limit{Max: 2, Window: 2 * time.Second, Margin: 50 * time.Millisecond},
		worker.Digest{After: 200 * time.Millisecond})
	first := r.publishTokens("crash", "", 0, 10, "x")
	var (
		snd  *crashingSender
		mu   sync.Mutex
		kill func()
	)
	h := r.startWorkerKillable(func(c *worker.Config) {
		snd = &crashingSender{Sender: c.Sender, crash: func() {
			mu.Lock()
			defer mu.Unlock()
			go kill()
			time.Sleep(300 * time.Millisecond) // the connection is closed at once; let it be
		}}
		c.Sender = snd
	})
	mu.Lock()
	kill = h.kill
	mu.Unlock()
	testenv.Eventually(t, 10*time.Second, snd.crashed.Load, "the first digest posted")
	h.stop()
	posted := r.accepted("crash")
	require.Len(t, posted, 1)
	id := snd.digest.Load().(string)
	require.Equal(t, id, posted[0].MsgUUID)
	inFirst := tokensPosted(posted)
	require.Equal(t, first[:len(inFirst)], inFirst)

	second := r.publishTokens("crash", "", 10, 5, "y") // would join a new digest, not the recorded one
	r.startWorker(nil)
	all := append(append([]string{}, first...), second...)
	posts := r.waitTokens("crash", all, 30*time.Second)
	require.Equal(t, id, posts[0].MsgUUID)
	var repeats int
	for _, q := range r.sim.Requests("crash") {
		if q.MsgUUID == id {
			repeats++
			require.Contains(t, []string{robotsim.RequestAccepted, robotsim.RequestDuplicate}, q.Outcome)
		}
		if q.Outcome == robotsim.RequestAccepted && q.MsgUUID != id {
			for _, tok := range inFirst {
				require.NotContains(t, q.Content, tok+" ", "a message of the first digest in another post")
			}
		}
	}
	require.Equal(t, 2, repeats, "the same digest posted again once, which DingTalk drops")
	require.Zero(t, r.sim.Stats("crash").Breaches)
}

// A digest that fails is retried like a message (backoff, attempts): the
// same digest, its messages handed back and folded the same way again.
func TestDigestRetried(t *testing.T) {
	r := newRig(t, "", robotsim.Config{Window: 2 * time.Second, Ban: time.Minute})
	r.digestRobot("flaky", nil, limiter.Limit{Max: 2, Window: 2 * time.Second, Margin: 50 * time.Millisecond},
		worker.Digest{After: 200 * time.Millisecond})
	tokens := r.publishTokens("flaky", "", 0, 8, "x")
	r.sim.InjectFault("flaky", robotsim.Fault{Status: 503, Count: 2})
	r.startWorker(nil)
	posts := r.waitTokens("flaky", tokens, 20*time.Second)
	require.Len(t, posts, 1, "one digest of all eight")
	id := posts[0].MsgUUID
	require.True(t, strings.HasPrefix(id, "digest-"))
	require.Equal(t, 2, r.sim.Stats("flaky").Faulted)
	evs := r.eventsFor(id)
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind)
	}
	require.Equal(t, []string{"retry", "retry", "digest"}, kinds, "retried twice, then accepted: the same digest")
	require.Equal(t, 3, evs[2].Attempts)
}

// Expired messages are dead-lettered as always, never folded.
func TestDigestExpiredNotFolded(t *testing.T) {
	r := newRig(t, "", robotsim.Config{Window: 2 * time.Second, Ban: time.Minute})
	r.digestRobot("exp", nil, limiter.Limit{Max: 2, Window: 2 * time.Second, Margin: 50 * time.Millisecond},
		worker.Digest{After: 200 * time.Millisecond})
	live := r.publishTokens("exp", "", 0, 3, "x")
	r.publishTokens("exp", "", 3, 1, "x", envelope.WithExpiresAt(time.Now().Add(100*time.Millisecond)))
	live = append(live, r.publishTokens("exp", "", 4, 3, "x")...)
	time.Sleep(200 * time.Millisecond)
	r.startWorker(nil)
	posts := r.waitTokens("exp", live, 20*time.Second)
	require.Len(t, digestPosts(posts), 1)
	es := r.waitDeadExactly(1, 10*time.Second)
	require.Equal(t, deadletter.ReasonExpired, es[0].Record.Reason)
	require.Contains(t, es[0].Record.Envelope.Message.Text.Content, "msg-0003")
}

// A message the ledger has as delivered (posted in a digest whose ack of
// it was lost, its consumer made anew since: a first delivery again) is
// not folded into the next digest: a claim finds it delivered and it is
// acked, which also keeps its entry (the done TTL counts from then); one
// that expired since is acked all the same, never dead-lettered as
// expired. The others are folded and posted once, in order.
func TestDigestItemAlreadyDeliveredIsNotFolded(t *testing.T) {
	r := newRig(t, "", robotsim.Config{Window: 2 * time.Second, Ban: time.Minute})
	r.digestRobot("again", nil, limiter.Limit{Max: 2, Window: 2 * time.Second, Margin: 50 * time.Millisecond},
		worker.Digest{After: 200 * time.Millisecond})
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: r.redisAddr()})
	t.Cleanup(func() { _ = rdb.Close() })
	led := ledger.NewRedis(rdb, r.prefix, time.Hour)
	var envs []*envelope.Envelope
	var want []string
	for i := range 10 {
		tok := fmt.Sprintf("msg-%04d", i)
		env := envelope.New("again", text(tok+" x"))
		envs = append(envs, env)
		if i == 5 || i == 7 {
			if i == 7 {
				soon := env.CreatedAt.Add(time.Millisecond) // expired when read
				env.ExpiresAt = &soon
			}
			require.NoError(t, led.MarkDelivered(ctx, stream.MsgID("again", env.ID), "w-before", "digest:earlier"))
			continue
		}
		want = append(want, tok)
	}
	_, err := r.pub.PublishAll(ctx, envs)
	require.NoError(t, err)
	r.startWorker(nil)
	posts := r.waitTokens("again", want, 30*time.Second)
	require.NotEmpty(t, digestPosts(posts), "the others were folded")
	for _, i := range []int{5, 7} {
		ev := r.eventsFor(envs[i].ID)
		require.Len(t, ev, 1, "message %d", i)
		require.Equal(t, "duplicate", ev[0].Kind, "message %d", i)
	}
	require.Empty(t, r.deadLetters(), "the expired one was delivered, not expired")
}
