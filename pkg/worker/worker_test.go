package worker_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
	"github.com/botrelay/botrelay/pkg/worker"
)

// allKinds returns one message of each DingTalk type, i-th variant.
func allKinds(i int) []envelope.Message {
	u := fmt.Sprintf("https://example.com/%d", i)
	return []envelope.Message{
		{Text: &envelope.Text{Content: fmt.Sprintf("alert %d", i)}},
		{Markdown: &envelope.Markdown{Title: "deploy", Text: fmt.Sprintf("## alert %d", i)}},
		{Link: &envelope.Link{Title: "alert", Text: fmt.Sprintf("link %d", i), MessageURL: u}},
		{ActionCard: &envelope.ActionCard{Title: "alert", Text: "card", SingleTitle: "open", SingleURL: u}},
		{ActionCard: &envelope.ActionCard{Title: "alert", Text: "btns", Buttons: []envelope.Button{{Title: "a", ActionURL: u}, {Title: "b", ActionURL: u}}}},
		{FeedCard: &envelope.FeedCard{Links: []envelope.FeedLink{{Title: "alert feed", MessageURL: u}}}},
	}
}

// Two hundred envelopes across ten robots of both platforms, every DingTalk
// message type: each is received exactly once, signed validly (the simulator
// refuses bad signatures), in publish order per robot.
func TestDeliversEveryMessageExactlyOnce(t *testing.T) {
	spine(t, "")
}

// The same against the machine's nats-server (Debian's 2.9), the minimum
// server version botrelay supports.
func TestSystemNATS29(t *testing.T) {
	url := os.Getenv("BOTRELAY_TEST_SYSTEM_NATS_URL")
	if url == "" {
		t.Skip("BOTRELAY_TEST_SYSTEM_NATS_URL not set (.ci/run sets it to the machine's nats-server)")
	}
	spine(t, url)
}

func spine(t *testing.T, natsURL string) {
	r := newRig(t, natsURL, robotsim.Config{})
	var names []string
	for i := range 5 {
		r.addRobot(robotsim.PlatformDingTalk, fmt.Sprintf("ding%d", i), "SECding"+fmt.Sprint(i), "SECding"+fmt.Sprint(i), nil, dingLimit)
		r.addRobot(robotsim.PlatformPOPO, fmt.Sprintf("popo%d", i), "popo-secret", "popo-secret", nil, popoLimit)
		names = append(names, fmt.Sprintf("ding%d", i), fmt.Sprintf("popo%d", i))
	}
	want := map[string][]*envelope.Envelope{} // robot -> envelopes in publish order
	var envs []*envelope.Envelope
	for i := range 20 {
		for j, name := range names {
			msg := allKinds(i)[(i+j)%6]
			env := envelope.New(name, msg, envelope.WithID(fmt.Sprintf("m-%s-%03d", name, i)))
			envs = append(envs, env)
			want[name] = append(want[name], env)
		}
	}
	require.Len(t, envs, 200)
	errs, err := r.pub.PublishAll(context.Background(), envs)
	require.NoError(t, err, "%v", errs)

	r.startWorker(nil)
	r.startWorker(nil) // two workers share the load

	for _, name := range names {
		// DingTalk requests are named by msgUuid (the envelope id), POPO
		// ones by their text (every message's is distinct).
		var p testenv.Posts
		if name[:4] == "ding" {
			p = r.waitPosts(name, expect{key: testenv.ByMsgUUID}, ids(want[name])...)
		} else {
			p = r.waitPosts(name, expect{}, contents(want[name])...)
		}
		require.Empty(t, p.Refused, "robot %s: every request signed validly", name)
		require.Empty(t, p.Faulted, "robot %s", name)
		st := r.sim.Stats(name)
		require.Equal(t, 20, st.Accepted, "robot %s", name)
		require.Equal(t, 20, st.Requests, "robot %s: %+v", name, st)
	}
	require.Empty(t, r.deadLetters())
	testenv.Eventually(t, 5*time.Second, func() bool { return r.outPending() == 0 }, "stream should be empty")
}

// A robot whose endpoint answers 503 three times is delivered on the fourth
// attempt; the attempts are counted.
func TestRetriesServerErrors(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformDingTalk, "flaky", "s3cr3t", "s3cr3t", nil, dingLimit)
	r.sim.InjectFault("flaky", robotsim.Fault{Status: 503, Count: 3})
	env := envelope.New("flaky", text("disk full"))
	r.publish(env)
	r.startWorker(nil)

	p := r.waitExactly("flaky", "disk full")
	require.Len(t, p.Faulted, 3, "the three 503s")
	testenv.Eventually(t, 5*time.Second, func() bool { return len(r.eventsFor(env.ID)) == 4 }, "events")
	evs := r.eventsFor(env.ID)
	for i, ev := range evs[:3] {
		require.Equal(t, "retry", ev.Kind)
		require.Equal(t, i+1, ev.Attempts)
		require.Equal(t, 503, ev.Result.HTTPStatus)
	}
	require.Equal(t, "delivered", evs[3].Kind)
	require.Equal(t, 4, evs[3].Attempts)
	require.Equal(t, 4, r.sim.Stats("flaky").Requests)
	require.Empty(t, r.deadLetters())
}

// Retryable failures past MaxAttempts end in the dead-letter stream with
// the attempts and the last answer.
func TestExhaustedRetriesAreDeadLettered(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "down", "", "", nil, popoLimit)
	r.sim.InjectFault("down", robotsim.Fault{Status: 500, Count: 100})
	env := envelope.New("down", text("x"))
	r.publish(env)
	r.startWorker(func(c *worker.Config) { c.MaxAttempts = 3 })

	dl := r.waitDead(1, 20*time.Second)[0].Record
	require.Equal(t, deadletter.ReasonExhausted, dl.Reason)
	require.Equal(t, 3, dl.Attempts)
	require.Equal(t, 500, dl.HTTPStatus)
	require.Equal(t, "retryable", dl.Class)
	require.Equal(t, env.ID, dl.Envelope.ID)
	require.False(t, dl.FirstAttempt.IsZero())
	require.False(t, dl.LastAttempt.Before(dl.FirstAttempt))
	require.Equal(t, 3, r.sim.Stats("down").Requests)
	p := r.waitExactly("down")
	require.Len(t, p.Faulted, 3, "three attempts, all answered 500, nothing else")
}

// Permanent failures and bad input: each dead-lettered with its reason,
// none retried, and nothing else lost.
func TestDeadLettersPermanentFailures(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformDingTalk, "wrongsecret", "right-secret", "wrong-secret", nil, dingLimit)
	r.addRobot(robotsim.PlatformDingTalk, "keyworded", "sec", "sec", []string{"[alert]"}, dingLimit)
	r.addRobot(robotsim.PlatformDingTalk, "fine", "sec", "sec", nil, dingLimit)

	signEnv := envelope.New("wrongsecret", text("hello"))
	kwEnv := envelope.New("keyworded", text("no keyword here"))
	kwOK := envelope.New("keyworded", text("[alert] disk full"))
	ghost := envelope.New("ghost", text("to a robot nobody configured"))
	r.publish(signEnv)
	r.publish(kwEnv)
	r.publish(kwOK)
	r.publish(ghost)
	_, err := r.js.Publish(context.Background(), r.topo.OutSubject("fine"), []byte(`{"v":1,"id":"broken",`))
	require.NoError(t, err)
	expired := envelope.New("fine", text("too late"), envelope.WithExpiresAt(time.Now().Add(-time.Second)))
	expired.CreatedAt = time.Now().Add(-time.Minute)
	r.publish(expired)

	r.startWorker(nil)
	dls := r.waitDeadExactly(5, 20*time.Second)
	byReason := map[deadletter.Reason]deadletter.Record{}
	for _, e := range dls {
		byReason[e.Record.Reason] = e.Record
	}
	require.Len(t, byReason, 5, "one dead letter per reason: %+v", dls)

	sign := byReason[deadletter.ReasonPermanent]
	require.Equal(t, "wrongsecret", sign.Robot)
	require.Contains(t, sign.ErrMsg, "sign not match")
	require.Equal(t, 310000, sign.ErrCode)
	require.Equal(t, 1, sign.Attempts)
	p := r.waitExactly("wrongsecret")
	require.Len(t, p.Refused, 1, "a permanent failure is not retried")
	require.Equal(t, "hello", p.Refused[0].Content)

	kw := byReason[deadletter.ReasonMissingKeyword]
	require.Equal(t, kwEnv.ID, kw.Envelope.ID)
	require.Zero(t, kw.Attempts)
	p = r.waitExactly("keyworded", "[alert] disk full")
	require.Empty(t, p.Refused, "the keyword-less message made no request")

	dec := byReason[deadletter.ReasonDecode]
	require.Equal(t, `{"v":1,"id":"broken",`, string(dec.Raw))
	require.Nil(t, dec.Envelope)

	unk := byReason[deadletter.ReasonUnknownRobot]
	require.Equal(t, "ghost", unk.Robot)
	require.Equal(t, ghost.ID, unk.Envelope.ID)

	exp := byReason[deadletter.ReasonExpired]
	require.Equal(t, expired.ID, exp.Envelope.ID)
	require.Empty(t, r.sim.Requests("fine"), "an expired message is never posted")

	for _, e := range dls {
		require.NotContains(t, fmt.Sprintf("%+v", e.Record), "right-secret")
		require.NotContains(t, fmt.Sprintf("%+v", e.Record), "wrong-secret")
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return r.outPending() == 0 }, "every message settled")
}

// A worker stopped mid-burst (drain) and one whose connection dies (crash)
// lose nothing: a second worker delivers the rest, each message once.
func TestWorkerStoppedMidBurstLosesNothing(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			r := newRig(t, "", robotsim.Config{})
			const robots, per = 4, 15
			var envs []*envelope.Envelope
			want := map[string][]*envelope.Envelope{}
			for i := range robots {
				name := fmt.Sprintf("r%d", i)
				r.addRobot(robotsim.PlatformDingTalk, name, "sec", "sec", nil, dingLimit)
				for j := range per {
					env := envelope.New(name, text(fmt.Sprintf("%s %d", name, j)))
					envs = append(envs, env)
					want[name] = append(want[name], env)
				}
			}
			_, err := r.pub.PublishAll(context.Background(), envs)
			require.NoError(t, err)
			// Slow the endpoint so the stop lands mid-burst.
			for i := range robots {
				r.sim.InjectFault(fmt.Sprintf("r%d", i), robotsim.Fault{Delay: 30 * time.Millisecond, Count: per})
			}
			h := r.startWorkerKillable(func(c *worker.Config) { c.AckWait = worker.MinAckWait })
			testenv.Eventually(t, 20*time.Second, func() bool { return r.countEvents("delivered") >= 10 }, "some delivered")
			if crash {
				h.kill() // in-flight posts complete, their acks are lost
			} else {
				h.stop()
			}
			delivered := r.countEvents("delivered")
			require.Less(t, delivered, robots*per, "stopped mid-burst")

			r.startWorker(func(c *worker.Config) { c.AckWait = worker.MinAckWait })
			// Each message once, in order: the ledger keeps a redelivered,
			// already posted message from being posted again (a repeat
			// would be counted even though DingTalk drops it by msgUuid).
			for i := range robots {
				name := fmt.Sprintf("r%d", i)
				p := r.waitPosts(name, expect{key: testenv.ByMsgUUID}, ids(want[name])...)
				require.Empty(t, p.Refused, "robot %s", name)
				require.Zero(t, r.sim.Stats(name).Duplicates, "robot %s", name)
			}
			require.Empty(t, r.deadLetters())
		})
	}
}

// A robot removed from the configuration of every worker leaves its durable
// consumer behind; messages still published for it are dead-lettered as
// unknown_robot once the consumer is seen abandoned, never left unseen.
func TestRemovedRobotIsDeadLettered(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformDingTalk, "kept", "sec", "sec", nil, dingLimit)
	r.addRobot(robotsim.PlatformDingTalk, "retired", "sec", "sec", nil, dingLimit)
	r.publish(envelope.New("retired", text("before")))
	stop := r.startWorker(nil)
	r.waitExactly("retired", "before")
	stop()

	r.robots = r.robots[:1] // the new config knows only "kept"
	late := envelope.New("retired", text("after the robot was removed"))
	r.publish(late)
	r.startWorker(nil)
	dl := r.waitDeadExactly(1, 20*time.Second)[0].Record
	require.Equal(t, deadletter.ReasonUnknownRobot, dl.Reason)
	require.Equal(t, late.ID, dl.Envelope.ID)
	r.waitExactly("retired", "before")
}

// A robot removed from every worker's config while its head message was
// pending on its consumer (handed back at drain, or deferred for a
// cool-off) keeps NumAckPending at 1 with nobody pulling; announced by no
// worker, it is still found removed, and its messages are dead-lettered.
func TestRemovedRobotWithPendingMessageIsSwept(t *testing.T) {
	for _, tc := range []struct {
		name string
		back func(jetstream.Msg) error
	}{
		{"handed back at drain", func(m jetstream.Msg) error { return m.Nak() }},
		{"deferred for a cool-off", func(m jetstream.Msg) error { return m.NakWithDelay(10 * time.Minute) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "", robotsim.Config{})
			r.addRobot(robotsim.PlatformPOPO, "kept", "sec", "sec", nil, popoLimit)
			ctx := context.Background()
			// The old config's worker served "retired" and handed its head
			// message back when it drained for the deploy that removed it.
			c, err := r.topo.EnsureRobotConsumer(ctx, r.js, "retired", 2*time.Second)
			require.NoError(t, err)
			one, two := envelope.New("retired", text("one")), envelope.New("retired", text("two"))
			r.publish(one)
			r.publish(two)
			msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
			require.NoError(t, err)
			require.NoError(t, tc.back(msg))

			r.startWorker(nil) // knows only "kept"
			es := r.waitDeadExactly(2, 15*time.Second)
			var got []string
			for _, e := range es {
				require.Equal(t, deadletter.ReasonUnknownRobot, e.Record.Reason)
				got = append(got, e.Record.Envelope.ID)
			}
			require.ElementsMatch(t, []string{one.ID, two.ID}, got, "each message dead-lettered once")
		})
	}
}

// A robot whose worker is busy with a message (nothing pulling, one
// pending) is announced, so a worker without it never sweeps it; with
// direct lanes no consumer holds its subject either, and the presence
// registry alone keeps it.
func TestBusyRobotOfAnotherWorkerIsNotSwept(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*worker.Config)
	}{{"consumer lanes", consumerLanes}, {"direct lanes", direct}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "", robotsim.Config{})
			r.addRobot(robotsim.PlatformPOPO, "kept", "sec", "sec", nil, popoLimit)
			r.addRobot(robotsim.PlatformPOPO, "busy", "sec", "sec", nil, popoLimit)
			r.sim.InjectFault("busy", robotsim.Fault{Delay: 1500 * time.Millisecond})
			r.startWorker(tc.mod) // serves both
			r.publish(envelope.New("busy", text("slow")))
			r.publish(envelope.New("busy", text("behind it")))
			if isConsumerLanes(tc.mod) {
				waitHeld(t, r, "busy")
			} else {
				time.Sleep(300 * time.Millisecond) // "slow" in flight
			}
			r.robots = r.robots[:1]
			r.startWorker(tc.mod) // knows only "kept", sweeps every 200ms
			r.waitExactly("busy", "slow", "behind it")
			require.Empty(t, r.deadLetters())
		})
	}
}

// isConsumerLanes reports whether mod turns consumer lanes on.
func isConsumerLanes(mod func(*worker.Config)) bool {
	var c worker.Config
	mod(&c)
	return c.ConsumerLanes
}

// A robot's consumer deleted under a running worker is created again and
// the robot keeps being served.
func TestConsumerRecreated(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "phoenix", "sec", "sec", nil, popoLimit)
	r.startWorker(consumerLanes)
	r.publish(envelope.New("phoenix", text("one")))
	r.waitExactly("phoenix", "one")
	require.NoError(t, r.js.DeleteConsumer(context.Background(), r.topo.OutStream(), r.topo.ConsumerName("phoenix")))
	r.publish(envelope.New("phoenix", text("two")))
	r.waitExactly("phoenix", "one", "two")
}

// A message that expires while it waits for its robot's slot is
// dead-lettered as expired, not posted late.
func TestExpiresWhileWaiting(t *testing.T) {
	r := newRig(t, "", robotsim.Config{Window: 2 * time.Second})
	r.addRobot(robotsim.PlatformDingTalk, "busy", "sec", "sec", nil, limiter.Limit{Max: 1, Window: 2 * time.Second})
	first := envelope.New("busy", text("first"))
	late := envelope.New("busy", text("stale soon"), envelope.WithTTL(500*time.Millisecond))
	r.publish(first)
	r.publish(late)
	r.startWorker(nil)
	dl := r.waitDeadExactly(1, 20*time.Second)[0].Record
	require.Equal(t, deadletter.ReasonExpired, dl.Reason)
	require.Equal(t, late.ID, dl.Envelope.ID)
	p := r.waitExactly("busy", "first") // only the first was posted
	require.Empty(t, p.Refused)
}

// The worker exports per-robot counters and the backlog gauge.
func TestMetrics(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "measured", "sec", "sec", nil, limiter.Limit{Max: 2, Window: time.Minute})
	r.addRobot(robotsim.PlatformPOPO, "rejecting", "sec", "wrong", nil, popoLimit)
	reg := prometheus.NewRegistry()
	r.publishN("measured", "m", 5)
	r.publish(envelope.New("rejecting", text("x")))
	r.startWorker(func(c *worker.Config) { c.Metrics = worker.NewMetrics(reg) })
	// The first two fill the window; the other three wait for the next.
	r.waitPosts("measured", expect{queued: true}, "m 0", "m 1")
	r.waitDead(1, 20*time.Second)
	p := r.waitExactly("rejecting")
	require.Len(t, p.Refused, 1, "refused once, not retried")

	value := func(name string, labels map[string]string) float64 { return metricValue(t, reg, name, labels) }
	testenv.Eventually(t, 10*time.Second, func() bool {
		return value("botrelay_backlog_messages", map[string]string{"robot": "measured"}) == 3
	}, "backlog gauge: 3 of 5 wait for the next window")
	// The simulator records a message before the worker counts the outcome.
	testenv.Eventually(t, 5*time.Second, func() bool {
		return value("botrelay_delivery_attempts_total", map[string]string{"robot": "measured", "outcome": "success"}) == 2 &&
			value("botrelay_dead_letters_total", map[string]string{"robot": "rejecting", "reason": "permanent"}) == 1
	}, "delivery and dead-letter counters")
	require.Equal(t, 1.0, value("botrelay_limiter_waits_total", map[string]string{"robot": "measured"}))
	require.Len(t, r.deadLetters(), 1)
	p = r.waitPosts("measured", expect{queued: true}, "m 0", "m 1")
	require.Empty(t, p.Refused)
}

// A consumer on a robot's subject that blocks its own consumer (the
// work-queue stream allows one) neither keeps the worker from starting nor
// from serving its other robots. A sweep consumer left behind (a worker
// killed mid-sweep) gives way at once; another consumer is waited out, the
// robot's lane trying again until it is gone.
func TestBlockedRobotConsumerDoesNotStopWorker(t *testing.T) {
	for _, tc := range []struct {
		name    string
		blocker string
		remove  bool // the test removes the blocker once the worker runs
	}{
		{name: "leftover sweep consumer", blocker: "unknown_newbie"},
		{name: "another consumer, removed later", blocker: "operator", remove: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "", robotsim.Config{})
			r.addRobot(robotsim.PlatformPOPO, "newbie", "sec", "sec", nil, popoLimit)
			r.addRobot(robotsim.PlatformPOPO, "bystander", "sec", "sec", nil, popoLimit)
			ctx := context.Background()
			_, err := r.js.CreateOrUpdateConsumer(ctx, r.topo.OutStream(), jetstream.ConsumerConfig{
				Durable:       tc.blocker,
				FilterSubject: r.topo.OutSubject("newbie"),
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       2 * time.Second,
				MaxDeliver:    -1,
			})
			require.NoError(t, err)
			r.publish(envelope.New("newbie", text("hello")))
			r.publish(envelope.New("bystander", text("hello")))

			_, js := testenv.Connect(t, r.url)
			rdb := redis.NewClient(&redis.Options{Addr: r.redisAddr()})
			t.Cleanup(func() { _ = rdb.Close() })
			lim, err := limiter.NewRedis(rdb, limiter.WithPrefix(r.prefix))
			require.NoError(t, err)
			reg := prometheus.NewRegistry()
			w, err := worker.New(js, worker.Config{
				Topology: r.topo, Robots: r.robots, Sender: newSender(t), Limiter: lim,
				Ledger: ledger.NewRedis(rdb, r.prefix, time.Hour), AckWait: 2 * time.Second,
				FetchWait: 300 * time.Millisecond, Logger: testLogger(), Metrics: worker.NewMetrics(reg),
				ConsumerLanes: true, // a direct lane has no consumer to be blocked
			})
			require.NoError(t, err)
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- w.Run(runCtx) }()
			t.Cleanup(func() { cancel(); <-done })
			running := func() {
				t.Helper()
				select {
				case err := <-done:
					done <- err
					t.Fatalf("Run returned: %v", err)
				default:
				}
			}
			if tc.remove {
				testenv.Eventually(t, 15*time.Second, func() bool {
					running()
					return len(r.sim.Received("bystander")) == 1
				}, "bystander served while newbie is blocked")
				require.Empty(t, r.sim.Received("newbie"))
				// Said loudly: readiness names the robot, the gauge counts it.
				require.ErrorContains(t, w.Healthy(), "1 robots not served (no consumer): newbie: ")
				require.Equal(t, 1.0, gaugeValue(t, reg, "botrelay_unserved_robots"))
				require.NoError(t, r.js.DeleteConsumer(ctx, r.topo.OutStream(), tc.blocker))
			}
			testenv.Eventually(t, 15*time.Second, func() bool {
				running()
				return len(r.sim.Received("newbie")) == 1 && len(r.sim.Received("bystander")) == 1
			}, "both robots served")
			r.waitExactly("newbie", "hello")
			r.waitExactly("bystander", "hello")
			require.NoError(t, w.Healthy(), "served again")
			require.Zero(t, gaugeValue(t, reg, "botrelay_unserved_robots"))
		})
	}
}

// metricValue returns the value of the counter or gauge name in reg whose
// labels are exactly labels, or -1 when there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// gaugeValue returns the value of the unlabelled gauge name in reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	v := metricValue(t, reg, name, nil)
	require.NotEqual(t, -1.0, v, "gauge %s not found", name)
	return v
}

// A message whose retry budget the ledger shows spent (its dead-letter
// publish failed before, the dead-letter stream being full) is not posted
// again: it is dead-lettered as exhausted, and while that keeps failing it
// is handed back with a pause that the ledger counts as a wait.
func TestSpentMessageIsDeadLetteredWithoutPosting(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "spent", "sec", "sec", nil, popoLimit)
	ctx := context.Background()
	env := envelope.New("spent", text("tried enough"))
	rdb, _ := testenv.Redis(t)
	led := ledger.NewRedis(rdb, r.prefix, time.Hour)
	key := stream.MsgID("spent", env.ID)
	for range 2 {
		_, err := led.RecordFailure(ctx, key, "earlier-worker", time.Now())
		require.NoError(t, err)
	}
	// The dead-letter stream is full (an operator's limit).
	dlq := r.fillDeadLetters()
	r.publish(env)

	r.startWorker(func(c *worker.Config) { c.MaxAttempts = 2 })
	testenv.Eventually(t, 15*time.Second, func() bool {
		st, err := led.Get(ctx, key)
		return (err == nil && st.Waits >= 1) || r.sim.Stats("spent").Requests > 0
	}, "the worker handled the message")
	require.Zero(t, r.sim.Stats("spent").Requests, "a spent message is not posted again")

	require.NoError(t, dlq.Purge(ctx))
	es := r.waitDeadExactly(1, 20*time.Second)
	require.Equal(t, deadletter.ReasonExhausted, es[0].Record.Reason)
	require.Equal(t, env.ID, es[0].Record.Envelope.ID)
	require.Equal(t, 2, es[0].Record.Attempts)
	require.Empty(t, r.sim.Requests("spent"))
}

// The robot consumers are shared and the worker whose lane started last
// sets their AckWait: a worker holding a message heartbeats often enough for the
// consumer's AckWait when it is shorter than its own, so the message is
// not redelivered to another worker meanwhile.
func TestHeartbeatFollowsSharedConsumerAckWait(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "shared", "sec", "sec", nil, popoLimit)
	ctx := context.Background()
	r.startWorker(func(c *worker.Config) { c.AckWait, c.ConsumerLanes = 3*time.Second, true })
	// The lane (and its consumer) starts with the robot's first message.
	r.publish(envelope.New("shared", text("first")))
	r.waitExactly("shared", "first")
	testenv.Eventually(t, 10*time.Second, func() bool {
		c, err := r.js.Consumer(ctx, r.topo.OutStream(), r.topo.ConsumerName("shared"))
		return err == nil && c.CachedInfo().Config.AckWait == 3*time.Second
	}, "the worker created the consumer")
	// A second worker starts with a shorter AckWait.
	c, err := r.topo.EnsureRobotConsumer(ctx, r.js, "shared", 600*time.Millisecond)
	require.NoError(t, err)
	time.Sleep(1500 * time.Millisecond) // past the first worker's refresh interval (its AckWait/3)

	r.sim.InjectFault("shared", robotsim.Fault{Delay: 1800 * time.Millisecond}) // under the client timeout
	r.publish(envelope.New("shared", text("slow to post")))
	waitHeld(t, r, "shared")
	// The second worker pulls meanwhile: it gets the message only if the
	// first let the consumer's AckWait pass without a heartbeat.
	m, err := c.Next(jetstream.FetchMaxWait(1200 * time.Millisecond))
	require.Error(t, err, "redelivered while the first worker held it: %v", m)
	p := r.waitExactly("shared", "first", "slow to post")
	require.Empty(t, p.Refused)
	require.Len(t, r.sim.Requests("shared"), 2)
}

// waitHeld waits until a worker holds a message of robot (its consumer has
// one pending).
func waitHeld(t *testing.T, r *rig, robot string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() bool {
		c, err := r.js.Consumer(context.Background(), r.topo.OutStream(), r.topo.ConsumerName(robot))
		return err == nil && c.CachedInfo().NumAckPending == 1
	}, "%s: a worker holds a message", robot)
}

// A consumer deleted while no pull is outstanding (its next pulls are
// answered "no responders") is noticed and created again.
func TestConsumerRecreatedBetweenPulls(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.addRobot(robotsim.PlatformPOPO, "phoenix", "sec", "sec", nil, popoLimit)
	r.publish(envelope.New("phoenix", text("one")))
	// A slow answer keeps the lane busy, with no pull outstanding, while
	// the consumer is deleted.
	r.sim.InjectFault("phoenix", robotsim.Fault{Delay: 500 * time.Millisecond})
	r.startWorker(consumerLanes)
	testenv.Eventually(t, 10*time.Second, func() bool { return r.sim.Stats("phoenix").Requests == 1 }, "request in flight")
	require.NoError(t, r.js.DeleteConsumer(context.Background(), r.topo.OutStream(), r.topo.ConsumerName("phoenix")))
	// "one" was posted, its ack lost with the consumer: it comes back on
	// the new consumer, and the ledger keeps it from being posted again
	// (POPO would show the repeat as a second message).
	r.waitExactly("phoenix", "one")
	r.publish(envelope.New("phoenix", text("two")))
	p := r.waitExactly("phoenix", "one", "two")
	require.Empty(t, p.Refused)
	require.Len(t, r.sim.Requests("phoenix"), 2, "one request per message")
}
