package worker_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/worker"
)

// A digest robot's lane follows the lazy-lane lifecycle: once its backlog
// is settled it stops after LaneIdle, its consumer (made for the backlog,
// MaxAckPending 1000) carries an InactiveThreshold and is deleted by the
// server once idle, and the next burst starts the lane again, folded into
// a digest, each message exactly once, in order.
func TestDigestLaneStopsWhenIdleAndRestarts(t *testing.T) {
	r := newRig(t, "", robotsim.Config{Window: 2 * time.Second, Ban: time.Minute})
	r.digestRobot("blinkd", nil, limiter.Limit{Max: 2, Window: 2 * time.Second, Margin: 50 * time.Millisecond},
		worker.Digest{After: 300 * time.Millisecond})
	r.startWorker(func(c *worker.Config) {
		c.LaneIdle, c.FetchWait = 200*time.Millisecond, 50*time.Millisecond
		c.HoldMax, c.RequestTimeout = 200*time.Millisecond, time.Second
		c.ScanInterval = time.Hour // only the announcements start lanes
		c.SweepInterval = -1
	})
	w := r.lastWorker()
	first := r.publishTokens("blinkd", "", 0, 6, "x")
	r.waitTokens("blinkd", first, 10*time.Second)

	ci, err := r.js.Consumer(context.Background(), r.topo.OutStream(), r.topo.ConsumerName("blinkd"))
	require.NoError(t, err)
	info := ci.CachedInfo()
	require.Equal(t, worker.MaxDigestPending, info.Config.MaxAckPending, "made for the backlog")
	require.Positive(t, info.Config.InactiveThreshold, "deleted by the server once idle")

	testenv.Eventually(t, 5*time.Second, func() bool { return w.Lanes() == 0 }, "idle digest lane stopped")
	testenv.Eventually(t, 10*time.Second, func() bool {
		_, err := r.js.Consumer(context.Background(), r.topo.OutStream(), r.topo.ConsumerName("blinkd"))
		return errors.Is(err, jetstream.ErrConsumerNotFound)
	}, "idle digest consumer deleted")

	second := r.publishTokens("blinkd", "", 6, 6, "y")
	posts := r.waitTokens("blinkd", append(append([]string{}, first...), second...), 15*time.Second)
	require.NotEmpty(t, digestPosts(posts))
	require.Zero(t, r.sim.Stats("blinkd").Breaches)
	require.Zero(t, r.sim.Stats("blinkd").Duplicates)
	testenv.Eventually(t, 5*time.Second, func() bool { return w.Lanes() == 0 }, "stopped again")
}

// unansweredSender posts the first message whose content holds token for
// real and reports no answer (a timeout after the platform took it).
type unansweredSender struct {
	worker.Sender
	token string
	done  atomic.Bool
}

func (s *unansweredSender) Deliver(ctx context.Context, rb delivery.Robot, env *envelope.Envelope) delivery.Result {
	res := s.Sender.Deliver(ctx, rb, env)
	if env.Message.Text != nil && strings.Contains(env.Message.Text.Content, s.token) && res.Outcome == delivery.Success &&
		s.done.CompareAndSwap(false, true) {
		return delivery.Result{Outcome: delivery.Retryable, Reason: "timeout awaiting the answer (test)"}
	}
	return res
}

// A message posted alone whose request went unanswered (the platform may
// have it) is retried alone, with its own msgUuid that DingTalk drops as a
// repeat — never folded into a digest, which would show it twice — while
// the messages after it fold as usual: each exactly once, in order.
func TestDigestUnansweredMessageNotFolded(t *testing.T) {
	r := newRig(t, "", robotsim.Config{Window: 2 * time.Second, Ban: time.Minute})
	r.digestRobot("unans", nil, limiter.Limit{Max: 2, Window: 2 * time.Second, Margin: 50 * time.Millisecond},
		worker.Digest{After: 300 * time.Millisecond})
	snd := &unansweredSender{token: "msg-0000"}
	r.startWorker(func(c *worker.Config) {
		snd.Sender = c.Sender
		c.Sender = snd
		c.Backoff = worker.Backoff{Initial: 150 * time.Millisecond, Max: 150 * time.Millisecond}
	})
	first := r.publishTokens("unans", "", 0, 1, "x")
	testenv.Eventually(t, 10*time.Second, snd.done.Load, "the first message posted, unanswered")
	rest := r.publishTokens("unans", "", 1, 6, "y")
	posts := r.waitTokens("unans", append(first, rest...), 20*time.Second)
	require.NotEmpty(t, digestPosts(posts), "the others folded")
	require.Equal(t, 1, r.sim.Stats("unans").Duplicates, "the retry of the unanswered message dropped by msgUuid")
	require.Zero(t, r.sim.Stats("unans").Breaches)
}

// A digest robot configured through the Go library, with keywords but a
// title without one (no config check on this path), whose messages carry
// the keyword past their first line: a digest of them would carry no
// keyword and be refused, each message dead-lettered. They are posted
// alone instead, each exactly once.
func TestDigestWithoutKeywordNotPosted(t *testing.T) {
	r := newRig(t, "", robotsim.Config{Window: 2 * time.Second, Ban: time.Minute})
	r.digestRobot("nokw", []string{"告警"}, limiter.Limit{Max: 3, Window: 2 * time.Second, Margin: 50 * time.Millisecond},
		worker.Digest{After: 200 * time.Millisecond})
	tokens := r.publishTokens("nokw", "disk full\n告警 ", 0, 6, "x")
	r.startWorker(nil)
	posts := r.waitTokens("nokw", tokens, 20*time.Second)
	require.Empty(t, digestPosts(posts))
	require.Empty(t, r.deadLetters())
	require.Zero(t, r.sim.Stats("nokw").Breaches)
}

// A worker dies between the platform's acceptance of a digest and the
// acks, and its messages expire before another worker picks them up: they
// were posted (in the digest), so they are settled as delivered — the same
// digest posted again, dropped by msgUuid — never dead-lettered as
// expired, which would make a replay post them twice.
func TestDigestCrashThenItemsExpired(t *testing.T) {
	r := newRig(t, "", robotsim.Config{Window: 2 * time.Second, Ban: time.Minute})
	r.digestRobot("crexp", nil, limiter.Limit{Max: 2, Window: 2 * time.Second, Margin: 50 * time.Millisecond},
		worker.Digest{After: 200 * time.Millisecond})
	expires := time.Now().Add(1500 * time.Millisecond)
	tokens := r.publishTokens("crexp", "", 0, 6, "x", envelope.WithExpiresAt(expires))
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
			time.Sleep(300 * time.Millisecond)
		}}
		c.Sender = snd
	})
	mu.Lock()
	kill = h.kill
	mu.Unlock()
	testenv.Eventually(t, 10*time.Second, snd.crashed.Load, "the first digest posted")
	h.stop()
	require.Equal(t, tokens, tokensPosted(r.accepted("crexp")), "one digest of all six")
	time.Sleep(time.Until(expires.Add(100 * time.Millisecond)))
	r.startWorker(nil)
	testenv.Eventually(t, 20*time.Second, func() bool { return r.queuedFor("crexp") == 0 }, "settled")
	require.Empty(t, r.deadLetters(), "posted in the digest: not expired")
	require.Equal(t, tokens, tokensPosted(r.accepted("crexp")), "each exactly once")
	require.Equal(t, 1, r.sim.Stats("crexp").Duplicates, "the same digest again, dropped")
}
