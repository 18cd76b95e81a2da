package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/console"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
	"github.com/botrelay/botrelay/pkg/worker"
)

// rig is a console over real servers: embedded JetStream, the test Redis
// (limiter state under the rig's prefix) and, when started, a worker
// delivering to the robot simulator.
type rig struct {
	t      *testing.T
	js     jetstream.JetStream
	topo   stream.Topology
	lim    *limiter.Redis
	prefix string
	sim    *robotsim.Server
	pub    *publisher.Publisher
	robots []worker.Robot
	srv    *console.Server
	http   *httptest.Server
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newRig(t *testing.T) *rig {
	t.Helper()
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(context.Background(), js))
	rdb, prefix := testenv.Redis(t)
	require.NoError(t, rdb.Set(context.Background(), prefix+":epoch", "0", 0).Err()) // no restart-guard quiet time
	lim, err := limiter.NewRedis(rdb, limiter.WithPrefix(prefix))
	require.NoError(t, err)
	sim := robotsim.NewServer(robotsim.Config{Logger: quiet()})
	t.Cleanup(sim.Close)
	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	return &rig{t: t, js: js, topo: topo, lim: lim, prefix: prefix, sim: sim, pub: pub}
}

// addRobot registers a DingTalk robot with the simulator (token = name).
func (r *rig) addRobot(name string, max int) {
	r.t.Helper()
	require.NoError(r.t, r.sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: name}))
	r.robots = append(r.robots, worker.Robot{
		Robot:   delivery.Robot{Name: name, Platform: robotsim.PlatformDingTalk, Webhook: r.sim.WebhookURL(name)},
		Limit:   limiter.Limit{Max: max, Window: time.Minute, Margin: time.Second},
		CoolOff: time.Second,
	})
}

// startWorker runs a worker for the rig's robots until cleanup.
func (r *rig) startWorker() {
	r.t.Helper()
	snd, err := delivery.New(delivery.WithTimeout(2 * time.Second))
	require.NoError(r.t, err)
	rdb, _ := testenv.Redis(r.t)
	led := ledger.NewRedis(rdb, r.prefix, time.Hour)
	w, err := worker.New(r.js, worker.Config{Topology: r.topo, Robots: r.robots, Sender: snd, Limiter: r.lim, Ledger: led,
		Presence: led, Backoff: worker.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		AckWait: 2 * time.Second, FetchWait: 300 * time.Millisecond, SweepInterval: 200 * time.Millisecond, Logger: quiet()})
	require.NoError(r.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	r.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(r.t, err)
		case <-time.After(30 * time.Second):
			r.t.Error("worker did not drain")
		}
	})
}

// startConsole serves a console over the rig; mod adjusts its config.
func (r *rig) startConsole(mod func(*console.Config)) {
	r.t.Helper()
	var robots []console.Robot
	for _, rb := range r.robots {
		robots = append(robots, console.Robot{Name: rb.Name, Platform: rb.Platform, Limit: rb.Limit})
	}
	cfg := console.Config{JetStream: r.js, Topology: r.topo, Robots: robots, ConfigName: "robots.yaml",
		Limiter: r.lim, Refresh: 100 * time.Millisecond, Logger: quiet()}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := console.New(cfg)
	require.NoError(r.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Run(ctx) })
	r.srv = srv
	r.http = httptest.NewServer(srv.Handler())
	r.t.Cleanup(func() { r.http.Close(); cancel(); wg.Wait() })
}

// call sends a request to the console and decodes a JSON answer into out
// (when not nil); it returns the status and the raw body.
func (r *rig) call(method, path string, body any, header http.Header, out any) (int, string) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(r.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.http.URL+path, rd)
	require.NoError(r.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(r.t, err)
	if out != nil && resp.StatusCode < 300 {
		require.NoError(r.t, json.Unmarshal(raw, out), string(raw))
	}
	return resp.StatusCode, string(raw)
}
