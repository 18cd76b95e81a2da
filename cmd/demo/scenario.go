package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
	"github.com/botrelay/botrelay/pkg/worker"
)

// The demo's robots.
const (
	robotOps    = "ding-ops"    // a burst of 3× its budget: the limiter holds it back
	robotAlerts = "ding-alerts" // keyword robot: every message type, and one without the keyword
	robotLegacy = "ding-legacy" // the platform allows fewer than the worker believes: throttled
	robotBadSig = "ding-badsig" // configured with the wrong secret: dead-lettered
	robotTeam   = "popo-team"   // every message type, and one malformed payload
	robotFlaky  = "popo-flaky"  // its first requests are answered 503: retried
	robotGhost  = "ding-ghost"  // configured nowhere: swept to the dead letters
	robotFeishu = "feishu-ops"  // Feishu: signed in the body, keyword, 100 a minute and 5 a second
	robotWeCom  = "wecom-ops"   // WeCom: no signature, the key is the credential

	keyword = "alert"

	dingLimit   = 20  // DingTalk: 20 a minute (scaled: per window)
	popoLimit   = 60  // POPO: 60 a minute
	feishuLimit = 100 // Feishu: 100 a minute ...
	feishuBurst = 5   // ... and 5 a second (scaled: per window/60)
	weComLimit  = 20  // WeCom: 20 a minute
	legacyLimit = 5   // what the platform really allows ding-legacy
	flakyFaults = 3   // 503s answered to popo-flaky before it recovers

	legacyMessages = 8 // > legacyLimit (a breach), <= 2*legacyLimit (only one)
)

// robotSpec is one robot of the scenario.
type robotSpec struct {
	Name     string
	Platform string // "" for the unconfigured robot
	Keywords []string
	// Limit is what the worker is configured with; SimLimit what the
	// simulated platform enforces.
	Limit, SimLimit int
	// Also are further windows of the worker's limit (Feishu's second).
	Also []limiter.Window
	// Unsigned robots have no secret (WeCom).
	Unsigned bool
	// Configured is false for the robot known to neither the worker nor
	// the platform.
	Configured bool
	// DeliberateBreach marks the robot whose limit is misconfigured on
	// purpose: its one breach is expected.
	DeliberateBreach bool
	// Note describes the robot's role in the introduction.
	Note string

	token, secret, workerSecret, webhook string
	// limitKey is the robot's limiter key: the identity of the platform
	// robot its webhook names, as the worker command keys it.
	limitKey string
}

// scenario is the robots, registered with the simulator.
type scenario struct {
	tm     timing
	robots []*robotSpec
	byName map[string]*robotSpec
	// byLimitKey finds a configured robot by its limiter key.
	byLimitKey map[string]*robotSpec
}

// newScenario registers the robots with sim, with random tokens and
// secrets, and queues the faults.
func newScenario(sim *robotsim.Server, tm timing) (*scenario, error) {
	specs := []*robotSpec{
		{Name: robotOps, Platform: delivery.PlatformDingTalk, Limit: dingLimit, SimLimit: dingLimit,
			Note: "signed; gets a burst of 3x its budget"},
		{Name: robotAlerts, Platform: delivery.PlatformDingTalk, Limit: dingLimit, SimLimit: dingLimit,
			Keywords: []string{keyword}, Note: fmt.Sprintf("signed, keyword %q; every message type", keyword)},
		{Name: robotLegacy, Platform: delivery.PlatformDingTalk, Limit: dingLimit, SimLimit: legacyLimit,
			DeliberateBreach: true, Note: fmt.Sprintf("signed; the platform allows only %d per window, the worker believes %d", legacyLimit, dingLimit)},
		{Name: robotBadSig, Platform: delivery.PlatformDingTalk, Limit: dingLimit, SimLimit: dingLimit,
			Note: "the worker is configured with the WRONG secret"},
		{Name: robotTeam, Platform: delivery.PlatformPOPO, Limit: popoLimit, SimLimit: popoLimit,
			Note: "signed; every message type, and one malformed payload"},
		{Name: robotFlaky, Platform: delivery.PlatformPOPO, Limit: popoLimit, SimLimit: popoLimit,
			Note: fmt.Sprintf("signed; the platform answers HTTP 503 to its first %d requests", flakyFaults)},
		{Name: robotFeishu, Platform: delivery.PlatformFeishu, Limit: feishuLimit, SimLimit: feishuLimit,
			Also:     []limiter.Window{{Max: feishuBurst, Window: tm.Window / 60}},
			Keywords: []string{keyword}, Note: fmt.Sprintf("Feishu, signed in the body, keyword %q; %d per window and %d per window/60; every message type", keyword, feishuLimit, feishuBurst)},
		{Name: robotWeCom, Platform: delivery.PlatformWeCom, Limit: weComLimit, SimLimit: weComLimit, Unsigned: true,
			Note: "WeCom, no signature (the key is the credential); every message type"},
		{Name: robotGhost, Note: "configured nowhere: messages for it must not sit unseen"},
	}
	sc := &scenario{tm: tm, robots: specs, byName: make(map[string]*robotSpec, len(specs)),
		byLimitKey: make(map[string]*robotSpec, len(specs))}
	for _, r := range specs {
		sc.byName[r.Name] = r
		r.Configured = r.Platform != ""
		if !r.Configured {
			continue
		}
		r.token, r.secret = randomHex(16), "SEC"+randomHex(24)
		if r.Unsigned {
			r.secret = ""
		}
		r.workerSecret = r.secret
		if r.Name == robotBadSig {
			r.workerSecret = "SEC" + randomHex(24)
		}
		if err := sim.AddRobot(robotsim.Robot{Platform: r.Platform, Token: r.token, Secret: r.secret,
			Keywords: r.Keywords, Limit: r.SimLimit}); err != nil {
			return nil, fmt.Errorf("simulator: add robot %s: %w", r.Name, err)
		}
		r.webhook = sim.WebhookURL(r.token)
		key, err := config.RobotIdentity(r.Platform, r.webhook)
		if err != nil {
			return nil, fmt.Errorf("robot %s: webhook: %w", r.Name, err)
		}
		r.limitKey = key
		sc.byLimitKey[key] = r
	}
	sim.InjectFault(sc.byName[robotFlaky].token, robotsim.Fault{Status: http.StatusServiceUnavailable, Count: flakyFaults})
	return sc, nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}

// configured returns the robots the worker and the simulator know.
func (sc *scenario) configured() []*robotSpec {
	var out []*robotSpec
	for _, r := range sc.robots {
		if r.Configured {
			out = append(out, r)
		}
	}
	return out
}

// configuredNames returns the names of configured robots, the fan-out targets.
func (sc *scenario) configuredNames() []string {
	var out []string
	for _, r := range sc.configured() {
		out = append(out, r.Name)
	}
	return out
}

// workerRobots is the worker's robot configuration.
func (sc *scenario) workerRobots() []worker.Robot {
	var out []worker.Robot
	for _, r := range sc.configured() {
		out = append(out, worker.Robot{
			Robot: delivery.Robot{Name: r.Name, Platform: r.Platform, Webhook: r.webhook,
				Secret: r.workerSecret, Keywords: r.Keywords},
			Limit:    limiter.Limit{Max: r.Limit, Window: sc.tm.Window, Margin: sc.tm.Margin, Also: r.Also},
			CoolOff:  sc.tm.CoolOff,
			LimitKey: r.limitKey,
		})
	}
	return out
}

// nameOf returns the name of the robot whose limiter key is key (key
// itself when no robot has it).
func (sc *scenario) nameOf(key string) string {
	if r, ok := sc.byLimitKey[key]; ok {
		return r.Name
	}
	return key
}

// secrets returns every token and secret of the scenario (for tests that
// check none is printed).
func (sc *scenario) secrets() []string {
	var out []string
	for _, r := range sc.configured() {
		for _, v := range []string{r.token, r.secret, r.workerSecret} {
			if v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

func text(s string) envelope.Message { return envelope.Message{Text: &envelope.Text{Content: s}} }

// everyKind returns one message of each type, each mentioning word in its
// visible text (the keyword robot needs it there).
func everyKind(word string) []envelope.Message {
	return []envelope.Message{
		text(word + ": disk usage on db-1 above 90% @13800000000"),
		{Markdown: &envelope.Markdown{Title: word + ": weekly report",
			Text: "### " + word + ": weekly report\n- deliveries: **ok**\n- [dashboard](https://example.com/d)"}},
		{Link: &envelope.Link{Title: word + ": release notes", Text: "version 1.4 is out",
			MessageURL: "https://example.com/releases/1.4"}},
		{ActionCard: &envelope.ActionCard{Title: word + ": approve deploy", Text: "deploy 1.4 to production?",
			SingleTitle: "Open", SingleURL: "https://example.com/deploys/14"}},
		{ActionCard: &envelope.ActionCard{Title: word + ": incident 42", Text: "acknowledge or escalate",
			Buttons: []envelope.Button{{Title: "Acknowledge", ActionURL: "https://example.com/i/42/ack"},
				{Title: "Escalate", ActionURL: "https://example.com/i/42/escalate"}}, BtnOrientation: "1"}},
		{FeedCard: &envelope.FeedCard{Links: []envelope.FeedLink{
			{Title: word + ": build 981 passed", MessageURL: "https://example.com/b/981"},
			{Title: word + ": build 982 failed", MessageURL: "https://example.com/b/982"}}}},
	}
}

// newEnvelope builds an envelope; the text message gets its mention.
func newEnvelope(robot string, m envelope.Message) *envelope.Envelope {
	var opts []envelope.Option
	if m.Text != nil && strings.Contains(m.Text.Content, "@13800000000") {
		opts = append(opts, envelope.WithAt(envelope.At{Mobiles: []string{"13800000000"}}))
	}
	return envelope.New(robot, m, opts...)
}

// publish sends the whole burst, narrating each step and counting what
// was stored per robot.
func (sc *scenario) publish(ctx context.Context, pub *publisher.Publisher, js jetstream.JetStream, topo stream.Topology, d *demo) error {
	batch := func(envs []*envelope.Envelope) error {
		if _, err := pub.PublishAll(ctx, envs); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		for _, e := range envs {
			d.published(e.Robot)
		}
		return nil
	}

	// One notification to every configured robot.
	targets := sc.configuredNames()
	fan := envelope.New("fanout", text(keyword+": deploy 1.4 finished on all hosts"))
	if _, err := pub.FanOut(ctx, fan, targets); err != nil {
		return fmt.Errorf("fan-out: %w", err)
	}
	for _, r := range targets {
		d.published(r)
	}
	d.say("producer", "fan-out: 1 notification -> %d robots (one copy each, ids <id>.<robot>)", len(targets))

	// A burst of 3x ding-ops's budget, counting its fan-out copy.
	var envs []*envelope.Envelope
	for i := range 3*dingLimit - 1 {
		envs = append(envs, envelope.New(robotOps, text(fmt.Sprintf("build %d finished", i+1))))
	}
	if err := batch(envs); err != nil {
		return err
	}
	d.say("producer", "%s: a burst of %d more messages = %d, 3x its budget of %d per %s",
		robotOps, len(envs), len(envs)+1, dingLimit, sc.tm.Window)

	// Every message type to the keyword robot, a POPO, a Feishu and a
	// WeCom robot.
	for _, robot := range []string{robotAlerts, robotTeam, robotFeishu, robotWeCom} {
		envs = envs[:0]
		for _, m := range everyKind(keyword) {
			envs = append(envs, newEnvelope(robot, m))
		}
		if err := batch(envs); err != nil {
			return err
		}
		d.say("producer", "%s: one message of each type (text with a mention, markdown, link, actionCard x2, feedCard)", robot)
	}
	if err := batch([]*envelope.Envelope{envelope.New(robotAlerts, text("lunch is served"))}); err != nil {
		return err
	}
	d.say("producer", "%s: 1 message WITHOUT the keyword %q", robotAlerts, keyword)

	// A malformed payload, published raw on a robot's subject.
	if _, err := js.Publish(ctx, topo.OutSubject(robotTeam), []byte(`{"v":1,"robot":"popo-team","message":`)); err != nil {
		return fmt.Errorf("publish the malformed payload: %w", err)
	}
	d.published(robotTeam)
	d.say("producer", "%s: 1 malformed payload (truncated JSON), published raw", robotTeam)

	// Messages for the flaky, the misconfigured, the wrongly signed and the
	// unknown robots.
	plan := []struct {
		robot, what string
		n           int
	}{
		{robotFlaky, fmt.Sprintf("its first %d requests will get HTTP 503", flakyFaults), 3},
		{robotLegacy, fmt.Sprintf("the platform will throttle it after %d", legacyLimit), legacyMessages - 1},
		{robotBadSig, "signed with the wrong secret", 1},
		{robotGhost, "no such robot is configured", 1},
	}
	for _, p := range plan {
		envs = envs[:0]
		for i := range p.n {
			envs = append(envs, envelope.New(p.robot, text(fmt.Sprintf("%s: job %d done", keyword, i+1))))
		}
		if err := batch(envs); err != nil {
			return err
		}
		d.say("producer", "%s: %d message(s); %s", p.robot, p.n, p.what)
	}
	d.say("producer", "%d messages published in %s; the worker is already delivering",
		d.publishedTotal(), d.elapsed().Round(time.Millisecond))
	return nil
}
