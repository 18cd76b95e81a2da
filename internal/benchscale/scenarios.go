package benchscale

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
)

// Scenarios lists the scenarios in the order [Run] runs them.
var Scenarios = []string{"idle", "fanout", "saturation", "throughput"}

// Run builds the binaries and runs the selected scenarios, each on its
// own nats-server, simulator and workers, adding their figures to r. A
// scenario that cannot run is reported and the next one still runs.
func Run(ctx context.Context, o Options, r *Report) error {
	o.defaults()
	for _, sc := range o.Scenarios {
		if !slices.Contains(Scenarios, sc) {
			return fmt.Errorf("benchscale: unknown scenario %q (want %s)", sc, strings.Join(Scenarios, ","))
		}
	}
	b, err := build(ctx, o.ModuleDir, o.Dir, o.Log)
	if err != nil {
		return err
	}
	run := map[string]func(context.Context, *Options, bins, *Report) error{
		"idle": idle, "fanout": fanout, "saturation": saturation, "throughput": throughput,
	}
	var errs []error
	for _, sc := range Scenarios {
		if !slices.Contains(o.Scenarios, sc) {
			continue
		}
		fmt.Fprintf(o.Log, "== %s\n", sc)
		if err := run[sc](ctx, &o, b, r); err != nil {
			fmt.Fprintf(o.Log, "%s: %v\n", sc, err)
			r.Info(sc, "error", firstLine(err.Error(), 160))
			errs = append(errs, fmt.Errorf("%s: %w", sc, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// firstLine is s up to its first newline, at most n bytes.
func firstLine(s string, n int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if len(s) > n {
		s = s[:n] + " …"
	}
	return s
}

// startFleet starts a stack with fleet f, n workers, and waits for them to
// be ready (and, with settle, for the outbound stream's consumers to
// settle); it reports the time to ready. before, when set, runs after the
// simulator started and before the workers do.
func startFleet(ctx context.Context, o *Options, b bins, sc string, f Fleet, n int, r *Report,
	settle bool, before func(*stack) error) (*stack, error) {
	s, err := newStack(ctx, o, b, sc)
	if err != nil {
		return nil, err
	}
	if err := s.startSim(ctx, f); err != nil {
		s.close()
		return nil, err
	}
	if before != nil {
		if err := before(s); err != nil {
			s.close()
			return nil, err
		}
	}
	t0 := time.Now()
	s.started = t0
	if err := s.startWorkers(n); err != nil {
		s.close()
		return nil, err
	}
	took, ok := s.waitReady(ctx, t0, o.ReadyTimeout)
	v := took.Round(100 * time.Millisecond).String()
	if !ok {
		v = fmt.Sprintf("not ready in %s", o.ReadyTimeout)
	}
	r.Add(sc, fmt.Sprintf("time to ready, %d robots, %d workers", f.Robots, n), v, "≤ 15s", ok && took <= 15*time.Second)
	fmt.Fprintf(o.Log, "%s: %d workers ready: %s\n", sc, n, v)
	if settle {
		s.settle(ctx, o, sc, t0, r)
	}
	return s, nil
}

// settle waits until the outbound stream's consumer count has not changed
// for settleQuiet (at most o.SettleTimeout): a worker may report ready
// before its per-robot set-up is done, and a figure taken meanwhile would
// not be the steady state. It reports the count and when it settled.
func (s *stack) settle(ctx context.Context, o *Options, sc string, since time.Time, r *Report) {
	const settleQuiet = 10 * time.Second
	name := stream.Topology{Prefix: s.prefix}.OutStream()
	last, lastChange := -1, time.Now()
	settled := waitFor(ctx, o.SettleTimeout, func() bool {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		n := -1
		if st, err := s.js.Stream(ictx, name); err == nil {
			if info, err := st.Info(ictx); err == nil {
				n = info.State.Consumers
			}
		}
		if n != last {
			last, lastChange = n, time.Now()
		}
		return n >= 0 && time.Since(lastChange) >= settleQuiet
	})
	v := fmt.Sprintf("%d consumers, unchanged since %s after start", last, lastChange.Sub(since).Round(100*time.Millisecond))
	if !settled {
		v = fmt.Sprintf("%d consumers, still changing %s after start", last, time.Since(since).Round(time.Second))
	}
	r.Info(sc, "outbound stream settled", v)
	fmt.Fprintf(o.Log, "%s: %s\n", sc, v)
}

// idle: 20,000 configured robots, nothing to deliver, 3 workers: NATS
// messages/s over the window, each worker's CPU and RSS.
func idle(ctx context.Context, o *Options, b bins, r *Report) error {
	const sc = "idle"
	s, err := startFleet(ctx, o, b, sc, Fleet{Lanes: o.Lanes, Robots: o.IdleRobots, Mix: true}, o.Workers, r, true, nil)
	if err != nil {
		return err
	}
	defer s.close()
	v0, err := readVarz(ctx, s.monURL)
	if err != nil {
		return err
	}
	cpu0 := make([]time.Duration, len(s.workers))
	for i, w := range s.workers {
		if cpu0[i], err = ReadCPU(w.pid()); err != nil {
			return err
		}
	}
	t0 := time.Now()
	select {
	case <-time.After(o.IdleWindow):
	case <-ctx.Done():
		return ctx.Err()
	}
	wall := time.Since(t0)
	v1, err := readVarz(ctx, s.monURL)
	if err != nil {
		return err
	}
	rate := float64(v1.Msgs()-v0.Msgs()) / wall.Seconds()
	r.Add(sc, fmt.Sprintf("NATS in+out msgs/s over %s (/varz)", wall.Round(time.Second)), fmt.Sprintf("%.0f", rate), "≤ 100", rate <= 100)
	for i, w := range s.workers {
		cpu1, err := ReadCPU(w.pid())
		if err != nil {
			return err
		}
		share := CPUShare(cpu1-cpu0[i], wall)
		rss, err := ReadRSS(w.pid())
		if err != nil {
			return err
		}
		r.Add(sc, fmt.Sprintf("worker %d CPU (of a core)", i), fmt.Sprintf("%.1f%%", 100*share), "≤ 3%", share <= 0.03)
		r.Add(sc, fmt.Sprintf("worker %d RSS", i), fmt.Sprintf("%d MB", rss>>20), "≤ 200 MB", rss <= 200<<20)
	}
	r.Info(sc, "worker log lines 'maximum consumers'", fmt.Sprint(s.logCount("maximum consumers")))
	return nil
}

// text is message i of robot name, padded to size bytes (0: not padded).
func text(name string, i, size int) string {
	t := fmt.Sprintf("%s msg %06d ", name, i)
	if len(t) < size {
		t += strings.Repeat("x", size-len(t))
	}
	return t
}

// publish publishes envs in chunks and returns when all are stored.
func publish(ctx context.Context, js jetstream.JetStream, prefix string, envs []*envelope.Envelope) error {
	pub, err := publisher.New(js, stream.Topology{Prefix: prefix}, publisher.WithDefaultTimeout(2*time.Minute))
	if err != nil {
		return fmt.Errorf("benchscale: %w", err)
	}
	// Below the async publish window (4,000 by default): a publish never stalls.
	const chunk = 1000
	for i := 0; i < len(envs); i += chunk {
		if _, err := pub.PublishAll(ctx, envs[i:min(i+chunk, len(envs))]); err != nil {
			// The join of up to a chunk of errors: the first says it.
			return fmt.Errorf("benchscale: publish: %s", firstLine(err.Error(), 300))
		}
	}
	return nil
}

// fanout: one message to each of 10,000 robots, DingTalk and POPO mixed,
// 3 workers: delivered within 30s of the publish, lost, duplicated, bad
// signatures.
func fanout(ctx context.Context, o *Options, b bins, r *Report) error {
	const sc = "fanout"
	f := Fleet{Lanes: o.Lanes, Robots: o.FanoutRobots, Mix: true}
	s, err := startFleet(ctx, o, b, sc, f, o.Workers, r, true, nil)
	if err != nil {
		return err
	}
	defer s.close()
	envs := make([]*envelope.Envelope, f.Robots)
	for i := range envs {
		name, _ := f.Robot(i)
		envs[i] = envelope.New(name, envelope.Message{Text: &envelope.Text{Content: text(name, 0, 0)}})
	}
	simCPU0, _ := ReadCPU(s.sim.pid())
	t0 := time.Now()
	if err := publish(ctx, s.js, s.prefix, envs); err != nil {
		return err
	}
	published := time.Since(t0)
	var at30 int
	var all time.Duration
	waitFor(ctx, o.FanoutWait, func() bool {
		t, err := s.totals(ctx)
		if err != nil {
			return false
		}
		if time.Since(t0) <= 30*time.Second {
			at30 = t.Stats.Accepted
		}
		if t.Stats.Accepted >= f.Robots {
			all = time.Since(t0)
			return true
		}
		return false
	})
	wall := time.Since(t0)
	simCPU1, _ := ReadCPU(s.sim.pid())
	rs, err := s.robots(ctx)
	if err != nil {
		return err
	}
	lost, dups, badSig := 0, 0, 0
	for _, rb := range rs {
		if rb.Stats.Accepted == 0 {
			lost++
		}
		// One message each: any further acceptance is a duplicate (it
		// includes the repeated contents), and so is a DingTalk repeat.
		dups += rb.Stats.Duplicates + max(rb.Stats.Accepted-1, 0)
		badSig += rb.Stats.SignatureFailures
	}
	r.Info(sc, "publish of all messages took", published.Round(time.Millisecond).String())
	r.Add(sc, "delivered within 30s of the publish", fmt.Sprintf("%d of %d", at30, f.Robots), fmt.Sprintf("%d", f.Robots), at30 == f.Robots)
	v := "not all"
	if all > 0 {
		v = all.Round(100 * time.Millisecond).String()
	}
	r.Add(sc, "time to the last delivery", v, "≤ 30s", all > 0 && all <= 30*time.Second)
	r.Add(sc, fmt.Sprintf("lost (no delivery after %s)", wall.Round(time.Second)), fmt.Sprint(lost), "0", lost == 0)
	r.Add(sc, "duplicated", fmt.Sprint(dups), "0", dups == 0)
	r.Add(sc, "bad signatures", fmt.Sprint(badSig), "0", badSig == 0)
	r.Info(sc, "simulator CPU (of a core) during the run", fmt.Sprintf("%.0f%%", 100*CPUShare(simCPU1-simCPU0, wall)))
	r.Info(sc, "worker log lines 'maximum consumers'", fmt.Sprint(s.logCount("maximum consumers")))
	return nil
}

// saturation: 2,000 POPO robots each given 2 minutes of quota (120
// messages), published before the workers start: the share of each
// robot's quota used in the 2 minutes from the workers' start, and 0
// breaches.
func saturation(ctx context.Context, o *Options, b bins, r *Report) error {
	const sc = "saturation"
	f := Fleet{Lanes: o.Lanes, Robots: o.SatRobots}
	envs := make([]*envelope.Envelope, 0, f.Robots*o.SatPerRobot)
	for j := range o.SatPerRobot {
		for i := range f.Robots {
			name, _ := f.Robot(i)
			envs = append(envs, envelope.New(name, envelope.Message{Text: &envelope.Text{Content: text(name, j, 0)}}))
		}
	}
	prePublish := func(s *stack) error {
		// The streams as the workers make them (the configuration's
		// defaults), so that the backlog waits for them.
		if err := (stream.Topology{Prefix: s.prefix}).Ensure(ctx, s.js); err != nil {
			return fmt.Errorf("benchscale: %w", err)
		}
		t := time.Now()
		if err := publish(ctx, s.js, s.prefix, envs); err != nil {
			return err
		}
		r.Info(sc, fmt.Sprintf("publish of %d messages before the workers took", len(envs)), time.Since(t).Round(time.Millisecond).String())
		return nil
	}
	s, err := startFleet(ctx, o, b, sc, f, o.Workers, r, false, prePublish)
	if err != nil {
		return err
	}
	defer s.close()
	t0 := s.started
	select {
	case <-time.After(time.Until(t0.Add(o.SatWindow))):
	case <-ctx.Done():
		return ctx.Err()
	}
	rs, err := s.robots(ctx)
	if err != nil {
		return err
	}
	const popoLimit = 60
	var used []float64
	breaches, dups := 0, 0
	for _, rb := range rs {
		used = append(used, QuotaUsed(rb.Stats.Accepted, popoLimit, o.SatWindow, time.Minute))
		breaches += rb.Stats.Breaches
		dups += rb.Stats.RepeatedContent
	}
	sort.Float64s(used)
	below := 0
	for _, u := range used {
		if u < 0.95 {
			below++
		}
	}
	r.Add(sc, fmt.Sprintf("robots using < 95%% of their quota in %s", o.SatWindow), fmt.Sprintf("%d of %d", below, len(used)), "0", below == 0)
	if len(used) > 0 {
		r.Info(sc, "quota used: min / median", fmt.Sprintf("%.1f%% / %.1f%%", 100*used[0], 100*used[len(used)/2]))
	}
	r.Add(sc, "breaches", fmt.Sprint(breaches), "0", breaches == 0)
	r.Add(sc, "duplicated", fmt.Sprint(dups), "0", dups == 0)
	r.Info(sc, "worker log lines 'maximum consumers'", fmt.Sprint(s.logCount("maximum consumers")))
	return nil
}

// bareToken is the simulator robot the bare loop posts to.
const bareToken = "bare"

// throughput: limits lifted, 500 robots, one worker: delivered msgs/s
// against a bare JetStream loop (publish ∥ pull-consume → POST 1 KiB →
// ack, no Redis, no signing) on the same server and simulator, run before
// the worker starts and again after its run.
func throughput(ctx context.Context, o *Options, b bins, r *Report) error {
	const sc = "throughput"
	f := Fleet{Lanes: o.Lanes, Robots: o.TPRobots, Mix: true, Lifted: true,
		Extra: []robotsim.Robot{{Platform: robotsim.PlatformPOPO, Token: bareToken}}}
	s, err := newStack(ctx, o, b, sc)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.startSim(ctx, f); err != nil {
		return err
	}
	bareBefore, err := s.bareRun(ctx, o, r, "before")
	if err != nil {
		return err
	}

	t0 := time.Now()
	if err := s.startWorkers(1); err != nil {
		return err
	}
	if _, ok := s.waitReady(ctx, t0, o.ReadyTimeout); !ok {
		return fmt.Errorf("worker not ready in %s", o.ReadyTimeout)
	}
	s.settle(ctx, o, sc, t0, r)
	before, err := s.totals(ctx)
	if err != nil {
		return err
	}
	envs := make([]*envelope.Envelope, o.TPMessages)
	for i := range envs {
		name, _ := f.Robot(i % f.Robots)
		envs[i] = envelope.New(name, envelope.Message{Text: &envelope.Text{Content: text(name, i, 1024)}})
	}
	workerCPU0, _ := ReadCPU(s.workers[0].pid())
	simCPU0, _ := ReadCPU(s.sim.pid())
	t1 := time.Now()
	if err := publish(ctx, s.js, s.prefix, envs); err != nil {
		return err
	}
	want := before.Stats.Accepted + len(envs)
	var got int
	done := waitFor(ctx, o.DeliveryTimeout, func() bool {
		t, err := s.totals(ctx)
		got = t.Stats.Accepted - before.Stats.Accepted
		return err == nil && t.Stats.Accepted >= want
	})
	wall := time.Since(t1)
	workerCPU1, _ := ReadCPU(s.workers[0].pid())
	simCPU1, _ := ReadCPU(s.sim.pid())
	rate := float64(got) / wall.Seconds()
	v := fmt.Sprintf("%.0f", rate)
	if !done {
		v += fmt.Sprintf(" (%d of %d in %s)", got, len(envs), wall.Round(time.Second))
	}
	r.Info(sc, fmt.Sprintf("worker msgs/s (%d × 1 KiB over %d robots)", len(envs), f.Robots), v)
	r.Info(sc, "worker CPU (of a core) during the run", fmt.Sprintf("%.0f%%", 100*CPUShare(workerCPU1-workerCPU0, wall)))
	if got > 0 {
		r.Info(sc, "worker CPU per delivered message", fmt.Sprintf("%.2f ms", float64(workerCPU1-workerCPU0)/float64(time.Millisecond)/float64(got)))
	}
	r.Info(sc, "simulator CPU (of a core) during the run", fmt.Sprintf("%.0f%%", 100*CPUShare(simCPU1-simCPU0, wall)))
	// The bare loop again, the worker stopped as before its run: the
	// machine's speed drifts (CPU steal on a VM), and the mean of a run on
	// each side of the worker's is the bare loop of the worker's moment.
	s.workers[0].stop(15 * time.Second)
	bareAfter, err := s.bareRun(ctx, o, r, "after")
	if err != nil {
		return err
	}
	bare := (bareBefore + bareAfter) / 2
	ratio := rate / bare
	r.Add(sc, "worker / bare loop (the mean of before and after)", fmt.Sprintf("%.2f", ratio), "≥ 0.3", done && ratio >= 0.3)
	return nil
}

// bareRun runs the bare loop once and reports its rate; when says where in
// the scenario it runs.
func (s *stack) bareRun(ctx context.Context, o *Options, r *Report, when string) (float64, error) {
	const sc = "throughput"
	start := time.Now()
	sim0, _ := ReadCPU(s.sim.pid())
	bare, err := bareLoop(ctx, s, o.TPBareMessages, o.TPConcurrency)
	if err != nil {
		return 0, fmt.Errorf("bare loop %s: %w", when, err)
	}
	sim1, _ := ReadCPU(s.sim.pid())
	r.Info(sc, fmt.Sprintf("bare loop %s the worker's run: msgs/s (%d × 1 KiB, %d posting)", when, o.TPBareMessages, o.TPConcurrency), fmt.Sprintf("%.0f", bare))
	r.Info(sc, fmt.Sprintf("simulator CPU (of a core) during the bare loop %s", when), fmt.Sprintf("%.0f%%", 100*CPUShare(sim1-sim0, time.Since(start))))
	fmt.Fprintf(o.Log, "%s: bare loop %s %.0f msgs/s\n", sc, when, bare)
	return bare, nil
}

// bareLoop publishes n 1 KiB messages to a work-queue stream of its own
// while conc goroutines pull them, POST each to the simulator's bare
// robot and ack it; it returns messages/s from the first publish to the
// last ack.
func bareLoop(ctx context.Context, s *stack, n, conc int) (float64, error) {
	name := strings.ToUpper(s.prefix) + "_BARE"
	st, err := s.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{s.prefix + ".bare"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage})
	if err != nil {
		return 0, fmt.Errorf("benchscale: %w", err)
	}
	defer func() { _ = s.js.DeleteStream(context.Background(), name) }()
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bare", AckPolicy: jetstream.AckExplicitPolicy,
		MaxAckPending: 4 * conc})
	if err != nil {
		return 0, fmt.Errorf("benchscale: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * conc))
	if err != nil {
		return 0, fmt.Errorf("benchscale: %w", err)
	}
	defer it.Stop()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * conc}}
	u := robotsim.WebhookURL(s.simURL, robotsim.PlatformPOPO, bareToken)
	var acked atomic.Int64
	var firstErr error
	var errOnce sync.Once
	allDone := make(chan struct{})
	var closeOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := it.Next()
				if err != nil {
					return // stopped
				}
				if err := post(ctx, client, u, m.Data()); err != nil {
					errOnce.Do(func() { firstErr = err })
					_ = m.Nak()
					continue
				}
				if err := m.Ack(); err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				if acked.Add(1) == int64(n) {
					closeOnce.Do(func() { close(allDone) })
				}
			}
		}()
	}
	pubErr := make(chan error, 1)
	go func() {
		body := strings.Repeat("x", 1024)
		for i := range n {
			msg := fmt.Sprintf(`{"message":"bare %07d %s"}`, i, body[:1024-20])
			if _, err := s.js.PublishAsync(s.prefix+".bare", []byte(msg)); err != nil {
				pubErr <- err
				return
			}
		}
		select {
		case <-s.js.PublishAsyncComplete():
			pubErr <- nil
		case <-time.After(time.Minute):
			pubErr <- errors.New("publish acks not complete in 1m")
		}
	}()
	var elapsed time.Duration
	select {
	case <-allDone:
		elapsed = time.Since(start)
	case <-time.After(3 * time.Minute):
		err = fmt.Errorf("benchscale: bare loop: %d of %d in 3m", acked.Load(), n)
	case <-ctx.Done():
		err = ctx.Err()
	}
	it.Stop()
	wg.Wait()
	if perr := <-pubErr; perr != nil && err == nil {
		err = fmt.Errorf("benchscale: bare publish: %w", perr)
	}
	if err != nil {
		return 0, errors.Join(err, firstErr)
	}
	return float64(n) / elapsed.Seconds(), nil
}

// post POSTs a POPO body and checks the simulator's answer.
func post(ctx context.Context, c *http.Client, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(string(body)))
	if err != nil {
		return fmt.Errorf("benchscale: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("benchscale: post: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	var a struct {
		ErrCode int `json:"errcode"`
	}
	if err := jsonDecode(resp, &a); err != nil {
		return err
	}
	if a.ErrCode != 0 {
		return fmt.Errorf("benchscale: post: errcode %d", a.ErrCode)
	}
	return nil
}
