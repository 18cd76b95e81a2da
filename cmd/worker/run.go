package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/stream"
	"github.com/botrelay/botrelay/pkg/worker"
)

// The default Redis address, and the environment variable that overrides
// it (the NATS ones are cli's).
const (
	defaultRedisAddr = "127.0.0.1:6379"
)

// flags are the parsed command line.
type flags struct {
	configPath       string
	checkConfig      bool
	natsURL          string
	natsConnectWait  time.Duration
	redisAddr        string
	redisPasswordEnv string
	redisDB          int
	redisCluster     bool
	limiter          string
	restartGuard     bool
	metricsAddr      string
	logLevel         slog.Level
	logFormat        string
	name             string
}

// run is the worker command; see the package doc.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runEnv(ctx, args, stdout, stderr, cli.Env{Lookup: os.LookupEnv})
}

// runEnv is run in the environment e; e.Listening is told the metrics
// server's address.
func runEnv(ctx context.Context, args []string, stdout, stderr io.Writer, e cli.Env) error {
	f, err := parseFlags(args, stderr, e.Lookup)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(f.configPath, e.Lookup)
	if err != nil {
		return err
	}
	if f.checkConfig {
		printSummary(stdout, f.configPath, cfg)
		return nil
	}
	log, err := cli.NewLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	return serve(ctx, f, cfg, log, e)
}

func parseFlags(args []string, stderr io.Writer, lookup func(string) (string, bool)) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.configPath, "config", "", "robot configuration file (YAML); required")
	fs.BoolVar(&f.checkConfig, "check-config", false, "validate the configuration, print a summary and exit")
	fs.StringVar(&f.natsURL, "nats", cli.EnvOr(lookup, cli.EnvNATSURL, cli.DefaultNATSURL), "NATS server URL(s), comma-separated (env "+cli.EnvNATSURL+")")
	fs.DurationVar(&f.natsConnectWait, "nats-connect-wait", 30*time.Second, "how long to keep trying to reach NATS at start")
	fs.StringVar(&f.redisAddr, "redis", cli.EnvOr(lookup, cli.EnvRedisAddr, defaultRedisAddr), "Redis host:port, or a Redis Cluster's nodes comma-separated (env "+cli.EnvRedisAddr+")")
	fs.BoolVar(&f.redisCluster, "redis-cluster", false, "treat a single --redis address as a Redis Cluster endpoint")
	fs.StringVar(&f.redisPasswordEnv, "redis-password-env", "", "name of the environment variable holding the Redis password")
	fs.IntVar(&f.redisDB, "redis-db", 0, "Redis database number")
	fs.StringVar(&f.limiter, "limiter", "redis", "rate limiter and ledger: redis (shared by all workers) or memory (a single worker only)")
	fs.BoolVar(&f.restartGuard, "restart-guard", true, "hold every robot for one window when the Redis limiter state is new "+
		"(after a first start or a Redis restart); turn off only with a persistent Redis that nothing else posts around")
	fs.StringVar(&f.metricsAddr, "metrics-addr", ":9090", `address of /metrics, /healthz and /readyz ("" disables)`)
	cli.AddLogFlags(fs, &f.logLevel, &f.logFormat)
	fs.StringVar(&f.name, "name", "", "worker name in dead letters (default host-pid)")
	if err := cli.Parse(fs, args); err != nil {
		return f, err
	}
	switch {
	case fs.NArg() > 0:
		return f, cli.Usagef("unexpected arguments %q", fs.Args())
	case f.configPath == "":
		return f, cli.Usagef("--config is required")
	case f.limiter != "redis" && f.limiter != "memory":
		return f, cli.Usagef("--limiter must be redis or memory, not %q", f.limiter)
	}
	if err := cli.CheckLogFormat(f.logFormat); err != nil {
		return f, err
	}
	if f.natsConnectWait <= 0 {
		return f, cli.Usagef("--nats-connect-wait must be positive")
	}
	return f, nil
}

// loadConfig is config.Load with the environment taken from lookup.
func loadConfig(path string, lookup func(string) (string, bool)) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := config.Parse(data, lookup)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// printSummary describes cfg without its webhooks and secrets.
func printSummary(w io.Writer, path string, cfg *config.Config) {
	r := cfg.Retry
	fmt.Fprintf(w, "%s: OK, %d robots\n", path, len(cfg.Robots))
	fmt.Fprintf(w, "prefix %s, concurrency %d\n", cfg.Prefix, cfg.Concurrency)
	fmt.Fprintf(w, "retry: %d attempts within %s, backoff %s to %s, x%g\n", r.MaxAttempts,
		time.Duration(r.MaxElapsed), time.Duration(r.InitialInterval), time.Duration(r.MaxInterval), r.Multiplier)
	for _, p := range delivery.PlatformNames() {
		l := cfg.Platforms[p]
		fmt.Fprintf(w, "platform %-8s %d per %s", p, l.Limit, time.Duration(l.Window))
		for _, x := range l.Windows {
			fmt.Fprintf(w, " and %d per %s", x.Limit, time.Duration(x.Window))
		}
		fmt.Fprintf(w, " (+%s margin), cool-off %s\n", time.Duration(l.Margin), time.Duration(l.CoolOff))
	}
	for _, rb := range cfg.Robots {
		l := cfg.Limit(rb)
		fmt.Fprintf(w, "robot %-20s %-8s %d per %s (+%s margin), cool-off %s, %s", rb.Name, rb.Platform,
			l.Max, l.Window, l.Margin, cfg.CoolOff(rb), secretSource(rb))
		if len(rb.Keywords) > 0 {
			fmt.Fprintf(w, ", keywords %q", rb.Keywords)
		}
		fmt.Fprintln(w)
	}
}

// secretSource says where rb's secret comes from, never what it is.
func secretSource(rb config.Robot) string {
	switch {
	case rb.SecretEnv != "":
		return "signed (secret_env " + rb.SecretEnv + ")"
	case rb.SecretFile != "":
		return "signed (secret_file " + rb.SecretFile + ")"
	case rb.Secret != "":
		return "signed (inline secret)"
	default:
		return "unsigned"
	}
}

// serve connects, runs the worker until ctx is done and drains.
func serve(ctx context.Context, f flags, cfg *config.Config, log *slog.Logger, e cli.Env) (err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := worker.NewMetrics(reg)
	h := &health{}

	if f.metricsAddr != "" {
		stopMetrics, err := startMetrics(f.metricsAddr, reg, h, log, e.Listening)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	nc, err := connectNATS(ctx, f, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	h.nc.Store(nc)
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	lim, led, closeStore, err := newStore(ctx, f, cfg, log, e.Lookup, h)
	if err != nil {
		return err
	}
	defer closeStore()

	opts := []delivery.Option{delivery.WithLogger(log)}
	for _, p := range delivery.PlatformNames() {
		opts = append(opts, delivery.WithRules(p, cfg.Rules(p)...))
	}
	snd, err := delivery.New(opts...)
	if err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	robots := make([]worker.Robot, len(cfg.Robots))
	for i, rb := range cfg.Robots {
		robots[i] = worker.Robot{Robot: rb.Delivery(), Limit: cfg.Limit(rb), CoolOff: cfg.CoolOff(rb)}
	}
	w, err := worker.New(js, worker.Config{
		Topology:    stream.Topology{Prefix: cfg.Prefix, Replicas: cfg.Replicas},
		HoldMax:     time.Duration(cfg.HoldMax),
		Robots:      robots,
		Sender:      snd,
		Limiter:     lim,
		Ledger:      led,
		Presence:    presence(led),
		Concurrency: cfg.Concurrency,
		AckWait:     time.Duration(cfg.AckWait),
		MaxAttempts: cfg.Retry.MaxAttempts,
		MaxElapsed:  time.Duration(cfg.Retry.MaxElapsed),
		Backoff: worker.Backoff{
			Initial:    time.Duration(cfg.Retry.InitialInterval),
			Max:        time.Duration(cfg.Retry.MaxInterval),
			Multiplier: cfg.Retry.Multiplier,
		},
		Name:    f.name,
		Logger:  log,
		Metrics: metrics,
	})
	if err != nil {
		return err
	}
	for _, rb := range cfg.Robots {
		l := cfg.Limit(rb)
		log.Info("robot configured", "robot", rb.Name, "platform", rb.Platform,
			"webhook", delivery.Redact(rb.Webhook), "limit", l.Max, "window", l.Window, "signed", rb.Secret != "")
	}

	h.running.Store(true)
	defer h.draining.Store(true)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // mark the pod not ready as soon as the drain starts
		<-runCtx.Done()
		h.draining.Store(true)
	}()
	if err := w.Run(runCtx); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		log.Warn("NATS flush at exit failed", "err", err)
	}
	log.Info("stopped")
	return nil
}

// connectNATS connects to f.natsURL, trying again until f.natsConnectWait
// has passed. The connection reconnects forever after later outages.
func connectNATS(ctx context.Context, f flags, log *slog.Logger) (*nats.Conn, error) {
	where := cli.RedactURL(f.natsURL)
	name := "botrelay-worker"
	if f.name != "" {
		name += " " + f.name
	}
	opts := append([]nats.Option{
		nats.Name(name),
		nats.Timeout(2 * time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
	}, cli.LogNATSEvents(log)...)
	deadline := time.Now().Add(f.natsConnectWait)
	for attempt := 1; ; attempt++ {
		nc, err := nats.Connect(f.natsURL, opts...)
		if err == nil {
			log.Info("connected to NATS", "server", cli.RedactURL(nc.ConnectedUrlRedacted()))
			return nc, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("connect to NATS at %s: gave up after %s (%d attempts): %w", where, f.natsConnectWait, attempt, err)
		}
		log.Warn("NATS not reachable yet; retrying", "server", where, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to NATS at %s: %w", where, ctx.Err())
		case <-time.After(min(500*time.Millisecond, time.Until(deadline)+time.Millisecond)):
		}
	}
}

// presence is led's registry of served robots: both ledgers have one, so
// the sweep can tell a robot removed from every worker's config from one
// whose worker is busy.
func presence(led ledger.Ledger) ledger.Presence {
	p, _ := led.(ledger.Presence)
	return p
}

// newStore returns the limiter and the ledger: shared in Redis, or held in
// this process with --limiter memory.
func newStore(ctx context.Context, f flags, cfg *config.Config, log *slog.Logger, lookup func(string) (string, bool), h *health) (limiter.Limiter, ledger.Ledger, func(), error) {
	if f.limiter == "memory" {
		log.Warn("--limiter memory: rate limits, cool-offs and the delivery ledger live in this process only; " +
			"run exactly one worker, or robots will exceed their limits and messages may be posted twice")
		h.redisPing = nil
		return limiter.NewMemory(nil), ledger.NewMemory(), func() {}, nil
	}
	var password string
	if f.redisPasswordEnv != "" {
		v, ok := lookup(f.redisPasswordEnv)
		if !ok || v == "" {
			return nil, nil, nil, fmt.Errorf("--redis-password-env: environment variable %s is not set", f.redisPasswordEnv)
		}
		password = v
	}
	// One address: a single Redis (or, with --redis-cluster, a cluster's
	// configuration endpoint); several, comma-separated: a Redis Cluster.
	// On a cluster the limiter keeps every key of a decision in the robot's
	// slot.
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 strings.Split(f.redisAddr, ","),
		IsClusterMode:         f.redisCluster,
		Password:              password,
		DB:                    f.redisDB,
		ClientName:            "botrelay-worker",
		DialTimeout:           2 * time.Second,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		PoolTimeout:           2 * time.Second,
		MaxRetries:            1,
		ContextTimeoutEnabled: true,
	})
	if _, cluster := rdb.(*redis.ClusterClient); cluster && f.redisDB != 0 {
		_ = rdb.Close()
		return nil, nil, nil, cli.Usagef("--redis-db must be 0 on a Redis Cluster")
	}
	lim, err := limiter.NewRedis(rdb, limiter.WithPrefix(cfg.Prefix), limiter.WithRestartGuard(f.restartGuard))
	if err != nil {
		_ = rdb.Close()
		return nil, nil, nil, fmt.Errorf("limiter: %w", err)
	}
	h.redisPing = func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := lim.Load(lctx); err != nil {
		// Not fatal: the worker holds every message (fails closed) and
		// resumes by itself once Redis answers.
		log.Error("Redis unreachable at start; holding all messages until it answers", "redis", f.redisAddr, "err", err)
	} else {
		log.Info("connected to Redis", "redis", f.redisAddr, "restart_guard", f.restartGuard)
	}
	return lim, ledger.NewRedis(rdb, cfg.Prefix, 0), func() { _ = rdb.Close() }, nil
}

// health backs /healthz and /readyz.
type health struct {
	running   atomic.Bool
	draining  atomic.Bool
	nc        atomic.Pointer[nats.Conn]
	redisPing func(context.Context) error // nil: no Redis; set before running
}

// live: the worker has started (it stays live while draining).
func (h *health) live(w http.ResponseWriter, _ *http.Request) {
	if !h.running.Load() {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

// ready: running, not draining, NATS connected and Redis answering.
func (h *health) ready(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	ok := true
	check := func(name string, err error) {
		if err != nil {
			ok = false
			fmt.Fprintf(&b, "%s: %v\n", name, err)
			return
		}
		fmt.Fprintf(&b, "%s: ok\n", name)
	}
	switch {
	case h.draining.Load():
		check("worker", errors.New("draining"))
	case !h.running.Load():
		check("worker", errors.New("starting"))
	default:
		check("worker", nil)
	}
	if nc := h.nc.Load(); nc == nil || !nc.IsConnected() {
		check("nats", errors.New("not connected"))
	} else {
		check("nats", nil)
	}
	if h.running.Load() && h.redisPing != nil {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		err := h.redisPing(ctx)
		cancel()
		if err != nil {
			err = errors.New("unreachable")
		}
		check("redis", err)
	}
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = io.WriteString(w, b.String())
}

// startMetrics serves /metrics, /healthz and /readyz on addr until the
// returned stop is called.
func startMetrics(addr string, reg *prometheus.Registry, h *health, log *slog.Logger, listening func(net.Addr)) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", h.live)
	mux.HandleFunc("GET /readyz", h.ready)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server failed", "err", err)
		}
	})
	log.Info("serving metrics", "addr", ln.Addr().String())
	if listening != nil {
		listening(ln.Addr())
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		wg.Wait()
	}, nil
}
