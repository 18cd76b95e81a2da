package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
	"github.com/botrelay/botrelay/pkg/worker"
)

// options are the command-line settings.
type options struct {
	// window is the simulated platforms' rate window; everything else
	// (ban, cool-off, margins) is scaled from it.
	window time.Duration
	// quiet prints only the summary.
	quiet bool
	// verbose shows the worker's own log (INFO and up) on stderr; by
	// default only its errors are shown.
	verbose bool
	// timeout bounds the whole demo; 0 means derived from window.
	timeout time.Duration
	// tmpParent is where the JetStream store directory is created; "" means
	// the system's temporary directory (tests point it at t.TempDir()).
	tmpParent string
}

// minWindow keeps the scaled timings above the scheduling noise of a busy
// machine.
const minWindow = time.Second

// parseFlags reads args into options.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.DurationVar(&o.window, "window", 6*time.Second,
		"the simulated platforms' rate window (the real one is 1m); the ban is 5/6 of it")
	fs.BoolVar(&o.quiet, "quiet", false, "print only the summary, not the narration")
	fs.BoolVar(&o.verbose, "verbose", false, "also show the worker's own log (INFO and up) on stderr")
	fs.DurationVar(&o.timeout, "timeout", 0, "give up after this long (default 10 windows + 30s)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: demo [flags]\n\nRuns botrelay end to end in one process: embedded NATS JetStream, robot simulator, worker, producer.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.window < minWindow {
		return options{}, fmt.Errorf("-window %s: must be at least %s", o.window, minWindow)
	}
	if o.timeout < 0 {
		return options{}, fmt.Errorf("-timeout %s: must not be negative", o.timeout)
	}
	return o, nil
}

// run is the command: it parses args, runs the demo and reports through its
// error whether anything went wrong.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	_, err = runDemo(ctx, o, stdout, stderr)
	return err
}

// timing is the demo's time scale.
type timing struct {
	Window  time.Duration // the platforms' rate window (simulated)
	Ban     time.Duration // how long the simulator bans a robot after a breach
	CoolOff time.Duration // how long the worker leaves a throttled robot alone
	Margin  time.Duration // limiter margin over the window
	Backoff worker.Backoff
}

func newTiming(w time.Duration) timing {
	t := timing{Window: w, Ban: (w * 5 / 6).Round(10 * time.Millisecond)}
	t.Margin = max(w/20, 250*time.Millisecond)
	t.CoolOff = t.Ban + max(w/12, 250*time.Millisecond)
	t.Backoff = worker.Backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond}
	return t
}

// runDemo runs the whole demo and returns its summary. The error is non-nil
// when the demo could not run, or when its summary shows a lost message or
// an unexpected limit breach (the summary is returned then too).
func runDemo(ctx context.Context, o options, stdout, stderr io.Writer) (*Summary, error) {
	if o.window < minWindow {
		return nil, fmt.Errorf("window %s: must be at least %s", o.window, minWindow)
	}
	tm := newTiming(o.window)
	timeout := o.timeout
	if timeout == 0 {
		timeout = 10*o.window + 30*time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	level := slog.LevelError
	if o.verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	n := newNarrator(stdout, o.quiet)

	// NATS JetStream, embedded.
	dir, err := os.MkdirTemp(o.tmpParent, "botrelay-demo-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	ns, err := startNATS(dir)
	if err != nil {
		return nil, err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := nats.Connect(ns.ClientURL(), nats.Name("botrelay-demo"))
	if err != nil {
		return nil, fmt.Errorf("connect to the embedded NATS server: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	topo := stream.Topology{} // production's names: BOTRELAY_OUT, BOTRELAY_DLQ
	if err := topo.Ensure(ctx, js); err != nil {
		return nil, fmt.Errorf("create streams: %w", err)
	}

	// The robot simulator.
	sim := robotsim.NewServer(robotsim.Config{Window: tm.Window, Ban: tm.Ban, Logger: slog.New(slog.DiscardHandler)})
	defer sim.Close()
	sc, err := newScenario(sim, tm)
	if err != nil {
		return nil, err
	}

	d := newDemo(n, sc, tm)
	n.intro(ns.ClientURL(), sim.URL, tm, sc)

	// The worker, over the in-process limiter and ledger.
	snd, err := delivery.New(delivery.WithTimeout(5*time.Second), delivery.WithLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("deliverer: %w", err)
	}
	led := ledger.NewMemory()
	w, err := worker.New(js, worker.Config{
		Topology: topo,
		Robots:   sc.workerRobots(),
		Sender:   recordingSender{Sender: snd, d: d},
		// No quiet time (limiter.Memory.Quiet) and no state file, on
		// purpose: the simulator was created a moment ago, so nothing was
		// sent to its robots before; a worker command restarting would
		// wait (see --limiter-state).
		Limiter:       countingLimiter{Limiter: limiter.NewMemory(nil), d: d},
		Ledger:        led,
		Presence:      led,
		Backoff:       tm.Backoff,
		AckWait:       2 * time.Second,
		FetchWait:     250 * time.Millisecond,
		SweepInterval: 300 * time.Millisecond,
		Name:          "demo-worker",
		Logger:        logger,
		Observe:       d.observe,
	})
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	wctx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = w.Run(wctx) })
	stopAndWait := func() error {
		stopWorker()
		wg.Wait()
		if runErr != nil {
			return fmt.Errorf("worker: %w", runErr)
		}
		return nil
	}

	// The producer.
	pub, err := publisher.New(js, topo)
	if err != nil {
		_ = stopAndWait()
		return nil, fmt.Errorf("publisher: %w", err)
	}
	if err := sc.publish(ctx, pub, js, topo, d); err != nil {
		_ = stopAndWait()
		return nil, err
	}

	// Wait until everything is settled, narrating progress.
	waitErr := d.waitSettled(ctx, js, topo)
	if err := stopAndWait(); err != nil {
		return nil, err
	}
	if waitErr != nil {
		return nil, waitErr
	}

	// Read the outcome back and report.
	lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer lcancel()
	sum, err := d.summarize(lctx, js, topo, sim)
	if err != nil {
		return nil, err
	}
	sum.print(stdout, tm)
	return sum, sum.check()
}

// startNATS starts an embedded JetStream server on a free loopback port
// with file storage in dir.
func startNATS(dir string) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{
		ServerName: "botrelay-demo",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded NATS server did not start within 10s")
	}
	return ns, nil
}
