package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
	"github.com/botrelay/botrelay/pkg/worker"
)

// findChromium returns the browser to drive: $BOTRELAY_TEST_CHROMIUM, or
// Debian's chromium (.ci/run installs it) or another Chrome on the PATH.
// Without one the test is skipped, except in CI (CI=true), where it fails.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BOTRELAY_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium found (apt-get install chromium, or set BOTRELAY_TEST_CHROMIUM): the console's browser test needs one"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestBrowserReplayDeadLetter drives the console in headless chromium
// against real NATS, Redis, a worker and the robot simulator: the page
// lists the dead letter the worker wrote, a dry run says what the replay
// would do and posts nothing, the replay delivers the message once, and
// the fleet page's deliveries chart counts it. With
// BOTRELAY_CONSOLE_SCREENSHOTS=dir it saves the pages for docs/console.md.
func TestBrowserReplayDeadLetter(t *testing.T) {
	chromium := findChromium(t)
	ctx := context.Background()
	natsURL := testenv.NATSURL(t)
	_, js := testenv.Connect(t, natsURL)
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(ctx, js))
	rdb, _ := testenv.Redis(t)
	t.Cleanup(func() {
		if keys, _ := rdb.Keys(context.Background(), topo.Prefix+":*").Result(); len(keys) > 0 {
			_ = rdb.Del(context.Background(), keys...).Err()
		}
	})
	require.NoError(t, rdb.Set(ctx, topo.Prefix+":epoch", "0", 0).Err()) // no restart-guard quiet time
	lim, err := limiter.NewRedis(rdb, limiter.WithPrefix(topo.Prefix))
	require.NoError(t, err)

	sim := robotsim.NewServer(robotsim.Config{Logger: quietLog()})
	t.Cleanup(sim.Close)
	served := []string{"ops-alerts", "deploys", "payments"}
	var robots []worker.Robot
	for _, name := range served {
		require.NoError(t, sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: name}))
		robots = append(robots, worker.Robot{
			Robot:   delivery.Robot{Name: name, Platform: robotsim.PlatformDingTalk, Webhook: sim.WebhookURL(name)},
			Limit:   limiter.Limit{Max: 20, Window: time.Minute, Margin: time.Second},
			CoolOff: time.Minute,
		})
	}
	// The platform refuses the first message to ops-alerts for good.
	sim.InjectFault("ops-alerts", robotsim.Fault{Body: `{"errcode":310000,"errmsg":"keywords not in content"}`})

	reg := prometheus.NewRegistry()
	metrics := worker.NewMetrics(reg)
	mh := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(mh.Close)
	startWorker(t, js, topo, lim, robots, metrics)

	cfgPath := testenv.WriteFile(t, "robots.yaml", `prefix: `+topo.Prefix+`
robots:
  - {name: ops-alerts, platform: dingtalk, webhook: "https://oapi.dingtalk.com/robot/send?access_token=tok", secret: SECnever, keywords: [alert]}
  - {name: deploys, platform: dingtalk, webhook: "https://oapi.dingtalk.com/robot/send?access_token=tok"}
  - {name: payments, platform: dingtalk, webhook: "https://oapi.dingtalk.com/robot/send?access_token=tok"}
  - {name: oncall-popo, platform: popo, webhook: "https://open.popo.netease.com/open-apis/robots/v1/hook/h", limit: 30}
`)
	base, logs := startConsole(t, []string{"--config", cfgPath, "--nats", natsURL, "--redis", testenv.RedisAddr(),
		"--refresh", "200ms", "--worker-metrics", mh.URL + "/metrics"}, nil)

	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	refused := envelope.New("ops-alerts", envelope.Message{Markdown: &envelope.Markdown{Title: "db-3 [alert]", Text: "## disk full on db-3\n95% used"}})
	_, err = pub.Publish(ctx, refused)
	require.NoError(t, err)
	for i := range 3 {
		_, err = pub.Publish(ctx, envelope.New("deploys", envelope.Message{Text: &envelope.Text{Content: fmt.Sprintf("api 4.%d deployed", i)}}))
		require.NoError(t, err)
	}
	seedScenery(t, js, topo, lim, pub)
	testenv.Eventually(t, 20*time.Second, func() bool {
		es, err := deadletter.List(ctx, js, topo, "ops-alerts", 0)
		return err == nil && len(es) == 1
	}, "the worker dead-letters the refused message")

	shots := os.Getenv("BOTRELAY_CONSOLE_SCREENSHOTS")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.WindowSize(1440, 1000), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	bctx, cancelTimeout := context.WithTimeout(bctx, 60*time.Second)
	defer cancelTimeout()

	var planText string
	require.NoError(t, chromedp.Run(bctx,
		chromedp.Navigate(base+"/deadletters?robot=ops-alerts"),
		chromedp.WaitVisible(`tr[data-seq] input.pick`, chromedp.ByQuery),
		chromedp.Click(`tr[data-seq] input.pick`, chromedp.ByQuery),
		chromedp.Click(`button[data-action="replay"][data-scope="selected"]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#plan-text").textContent.startsWith("Dry run:")`, nil),
		chromedp.Text(`#plan-text`, &planText, chromedp.ByQuery),
	), "logs:\n%s", logs.String())
	require.Equal(t, "Dry run: 1 matched; 1 would be replayed. Go to replay 1.", planText)
	time.Sleep(300 * time.Millisecond) // a replay would be on its way by now
	require.Empty(t, sim.Received("ops-alerts"), "the dry run posted nothing")

	var done string
	require.NoError(t, chromedp.Run(bctx,
		chromedp.Click(`#plan-go`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#plan-text").textContent.startsWith("Done:")`, nil),
		chromedp.Text(`#plan-text`, &done, chromedp.ByQuery),
	))
	require.Equal(t, "Done: 1 replayed. Reload to see the list now.", done)
	testenv.Eventually(t, 20*time.Second, func() bool { return len(sim.Received("ops-alerts")) == 1 }, "the replay is delivered")
	require.Equal(t, "## disk full on db-3\n95% used", sim.Received("ops-alerts")[0].Content)

	// A second click on the same dead letter posts nothing more.
	require.NoError(t, chromedp.Run(bctx,
		chromedp.Click(`button[data-action="replay"][data-scope="selected"]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#plan-text").textContent.startsWith("Dry run:")`, nil),
		chromedp.Click(`#plan-go`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#plan-text").textContent.startsWith("Done:")`, nil),
		chromedp.Text(`#plan-text`, &done, chromedp.ByQuery),
	))
	require.Equal(t, "Done: 1 already replayed (skipped). Reload to see the list now.", done)

	// The fleet page sees it delivered: the deliveries chart of ops-alerts
	// counts one.
	var caption string
	testenv.Eventually(t, 20*time.Second, func() bool {
		err := chromedp.Run(bctx, chromedp.Navigate(base+"/?robot=ops-alerts"),
			chromedp.Text(`section.charts figure figcaption`, &caption, chromedp.ByQuery))
		return err == nil && strings.Contains(caption, "total 1 ·")
	}, "the deliveries chart counts the replay; last caption %q", caption)
	time.Sleep(300 * time.Millisecond)
	require.Len(t, sim.Received("ops-alerts"), 1, "posted once")

	if shots != "" {
		screenshot(t, bctx, base+"/", filepath.Join(shots, "console-fleet.png"))
		screenshot(t, bctx, base+"/deadletters", filepath.Join(shots, "console-deadletters.png"))
	}
	require.NotContains(t, logs.String(), "SECnever")
}

// screenshot saves the page at url as a PNG.
func screenshot(t *testing.T, ctx context.Context, url, path string) {
	t.Helper()
	var png []byte
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(url), chromedp.WaitVisible(`main`, chromedp.ByQuery), chromedp.FullScreenshot(&png, 100)))
	require.NoError(t, os.WriteFile(path, png, 0o644))
}

// seedScenery gives the fleet page something to show: a robot no worker
// serves with a backlog, a cooling-off robot and dead letters of several
// reasons.
func seedScenery(t *testing.T, js jetstream.JetStream, topo stream.Topology, lim *limiter.Redis, pub *publisher.Publisher) {
	t.Helper()
	ctx := context.Background()
	for i := range 4 {
		_, err := pub.Publish(ctx, envelope.New("oncall-popo", envelope.Message{Text: &envelope.Text{Content: fmt.Sprintf("page %d", i)}}))
		require.NoError(t, err)
	}
	require.NoError(t, lim.CoolOff(ctx, "payments", 8*time.Minute))
	now := time.Now()
	for i, reason := range []deadletter.Reason{deadletter.ReasonExhausted, deadletter.ReasonExpired, deadletter.ReasonExhausted} {
		env := envelope.New("payments", envelope.Message{Text: &envelope.Text{Content: fmt.Sprintf("refund %d failed", i)}})
		rec := deadletter.Record{Envelope: env, Robot: "payments", Reason: reason, Attempts: 8, ErrCode: -1, ErrMsg: "system busy",
			Detail: "8 attempts, last: system busy", DeadAt: now.Add(-time.Duration(i*7) * time.Hour), Subject: topo.OutSubject("payments"), Sequence: uint64(900 + i)}
		if reason == deadletter.ReasonExpired {
			rec.ErrCode, rec.ErrMsg, rec.Detail, rec.Attempts = 0, "", "expires_at passed before a slot", 0
		}
		require.NoError(t, deadletter.Publish(ctx, js, topo, rec))
	}
}

func startWorker(t *testing.T, js jetstream.JetStream, topo stream.Topology, lim *limiter.Redis, robots []worker.Robot, m *worker.Metrics) {
	t.Helper()
	snd, err := delivery.New(delivery.WithTimeout(2 * time.Second))
	require.NoError(t, err)
	rdb, _ := testenv.Redis(t)
	led := ledger.NewRedis(rdb, topo.Prefix, time.Hour)
	w, err := worker.New(js, worker.Config{Topology: topo, Robots: robots, Sender: snd, Limiter: lim, Ledger: led, Presence: led,
		Backoff: worker.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}, AckWait: 2 * time.Second,
		FetchWait: 300 * time.Millisecond, SweepInterval: time.Hour, Logger: quietLog(), Metrics: m})
	require.NoError(t, err)
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("worker did not drain")
		}
	})
}
