package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/reload"
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
	configPoll       time.Duration
	natsURL          string
	natsConnectWait  time.Duration
	redisAddr        string
	redisPasswordEnv string
	redisDB          int
	redisCluster     bool
	redisPipeline    bool
	limiter          string
	limiterState     string
	restartGuard     bool
	metricsAddr      string
	metricsListen    string
	metricsTokenEnv  string
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
	cfg, data, err := loadConfig(f.configPath, e.Lookup)
	if err != nil {
		return err
	}
	if f.checkConfig {
		printSummary(stdout, f.configPath, cfg)
		for _, w := range cfg.Warnings() {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
		return nil
	}
	log, err := cli.NewLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		log.Warn("config: " + w)
	}
	return serve(ctx, f, cfg, data, log, e)
}

func parseFlags(args []string, stderr io.Writer, lookup func(string) (string, bool)) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.configPath, "config", "", "robot configuration file (YAML); required")
	fs.BoolVar(&f.checkConfig, "check-config", false, "validate the configuration, print a summary and exit")
	fs.DurationVar(&f.configPoll, "config-poll", config.DefaultPollInterval, "how often the configuration file is checked for "+
		"changes, which are then reloaded (0: only on SIGHUP)")
	fs.StringVar(&f.natsURL, "nats", cli.EnvOr(lookup, cli.EnvNATSURL, cli.DefaultNATSURL), "NATS server URL(s), comma-separated (env "+cli.EnvNATSURL+")")
	fs.DurationVar(&f.natsConnectWait, "nats-connect-wait", 30*time.Second, "how long to keep trying to reach NATS at start")
	fs.StringVar(&f.redisAddr, "redis", cli.EnvOr(lookup, cli.EnvRedisAddr, defaultRedisAddr), "Redis host:port, or a Redis Cluster's nodes comma-separated (env "+cli.EnvRedisAddr+")")
	fs.BoolVar(&f.redisCluster, "redis-cluster", false, "treat a single --redis address as a Redis Cluster endpoint")
	fs.StringVar(&f.redisPasswordEnv, "redis-password-env", "", "name of the environment variable holding the Redis password")
	fs.IntVar(&f.redisDB, "redis-db", 0, "Redis database number")
	fs.BoolVar(&f.redisPipeline, "redis-autopipeline", true, "send the lanes' concurrent Redis commands to a single Redis "+
		"together, as pipelines (one write and one read for many; not on a Redis Cluster)")
	fs.StringVar(&f.limiter, "limiter", "redis", "rate limiter and ledger: redis (shared by all workers) or memory (a single worker only)")
	fs.StringVar(&f.limiterState, "limiter-state", "", "with --limiter memory: save the limiter's windows and cool-offs to FILE "+
		"on a clean shutdown and restore them at start (without a valid FILE, robots wait out the quiet time)")
	fs.BoolVar(&f.restartGuard, "restart-guard", true, "hold every robot for the longest cool-off (at least one window) when the "+
		"limiter state is new (a first start, a Redis restart or evictions; with --limiter memory, a start without "+
		"--limiter-state); turn off only when nothing else posts to the robots and Redis persists its data")
	fs.StringVar(&f.metricsAddr, "metrics-addr", ":9090", `address of /metrics, /healthz and /readyz ("" disables)`)
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "serve /metrics on this address instead (e.g. 127.0.0.1:9091 for a sidecar); --metrics-addr keeps the probes")
	fs.StringVar(&f.metricsTokenEnv, "metrics-token-env", "", "environment variable holding a bearer token that /metrics requires")
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
	case f.limiterState != "" && f.limiter != "memory":
		return f, cli.Usagef("--limiter-state needs --limiter memory (Redis keeps the state of the redis limiter)")
	}
	if err := cli.CheckLogFormat(f.logFormat); err != nil {
		return f, err
	}
	if f.configPoll < 0 {
		return f, cli.Usagef("--config-poll must not be negative")
	}
	if f.natsConnectWait <= 0 {
		return f, cli.Usagef("--nats-connect-wait must be positive")
	}
	if f.metricsAddr == "" && f.metricsListen == "" && f.metricsTokenEnv != "" {
		return f, cli.Usagef("--metrics-token-env needs --metrics-addr or --metrics-listen")
	}
	return f, nil
}

// loadConfig is config.Load with the environment taken from lookup; it
// also returns the file's content.
func loadConfig(path string, lookup func(string) (string, bool)) (*config.Config, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := config.Parse(data, lookup)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, data, nil
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

// serve connects, runs the worker until ctx is done and drains. data is
// the content cfg was loaded from: the file's changes from it, and SIGHUP,
// reload the robots.
func serve(ctx context.Context, f flags, cfg *config.Config, data []byte, log *slog.Logger, e cli.Env) (err error) {
	// From now on SIGHUP reloads the configuration (by default it would
	// end the process).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := worker.NewMetrics(reg)
	h := &health{}

	metricsToken, err := readMetricsToken(f.metricsTokenEnv, e.Lookup)
	if err != nil {
		return err
	}
	metricsHandler := protect(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}), metricsToken)
	if f.metricsAddr != "" {
		mh := metricsHandler
		if f.metricsListen != "" {
			mh = nil // served on its own address below
		}
		stopMetrics, err := startMetrics(f.metricsAddr, mh, h, log, e.Listening)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	if f.metricsListen != "" {
		stopMetrics, err := startMetrics(f.metricsListen, metricsHandler, nil, log, e.Listening)
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

	lim, led, publishKeys, closeStore, err := newStore(ctx, f, cfg, log, e.Lookup, h)
	if err != nil {
		return err
	}
	defer closeStore()

	opts := []delivery.Option{delivery.WithLogger(log),
		delivery.WithMaxRetryAfter(time.Duration(cfg.Retry.MaxInterval))}
	for _, p := range delivery.PlatformNames() {
		opts = append(opts, delivery.WithRules(p, cfg.Rules(p)...))
	}
	snd, err := delivery.New(opts...)
	if err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	w, err := worker.New(js, worker.Config{
		Topology:      stream.Topology{Prefix: cfg.Prefix, Replicas: cfg.Replicas, Limits: cfg.StreamLimits()},
		HoldMax:       time.Duration(cfg.HoldMax),
		LaneIdle:      time.Duration(cfg.LaneIdle),
		ScanInterval:  time.Duration(cfg.ScanInterval),
		ConsumerLanes: cfg.Lanes == config.LanesConsumer,
		Robots:        workerRobots(cfg),
		Sender:        snd,
		Limiter:       lim,
		Ledger:        led,
		Presence:      presence(led),
		Concurrency:   cfg.Concurrency,
		AckWait:       time.Duration(cfg.AckWait),
		MaxAttempts:   cfg.Retry.MaxAttempts,
		MaxThrottles:  cfg.Retry.MaxThrottles,
		MaxElapsed:    time.Duration(cfg.Retry.MaxElapsed),
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
	h.store = w.Healthy
	for _, app := range cfg.Apps {
		l := cfg.AppLimit(app)
		log.Info("app configured (replies to its callbacks)", "app", app.Name, "platform", app.Platform, "limit_per_conversation", l.Max, "window", l.Window)
	}
	logRobots(log, cfg)

	rl, err := reload.New(reload.Config{Path: f.configPath, Lookup: e.Lookup, Logger: log, Registerer: reg,
		Apply: func(next *config.Config) error {
			if err := w.Reload(workerRobots(next)); err != nil {
				return err
			}
			publishKeys(ctx, next)
			return nil
		}}, cfg)
	if err != nil {
		return err
	}
	watcher, err := config.NewWatcher(f.configPath, config.WithBaseline(data), config.WithPollInterval(f.configPoll))
	if err != nil {
		return err
	}

	h.running.Store(true)
	defer h.draining.Store(true)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // mark the pod not ready as soon as the drain starts
		<-runCtx.Done()
		h.draining.Store(true)
	}()
	var bg sync.WaitGroup
	defer bg.Wait()
	defer cancel()
	bg.Go(func() {
		for {
			select {
			case <-runCtx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading the configuration", "file", f.configPath)
				watcher.Trigger()
			}
		}
	})
	bg.Go(func() { rl.Run(runCtx, watcher) })
	if err := w.Run(runCtx); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		log.Warn("NATS flush at exit failed", "err", err)
	}
	log.Info("stopped")
	return nil
}

// workerRobots are the worker's robots of cfg: its robots, and each app's
// reply robot.
func workerRobots(cfg *config.Config) []worker.Robot {
	robots := make([]worker.Robot, len(cfg.Robots))
	for i, rb := range cfg.Robots {
		robots[i] = worker.Robot{Robot: rb.Delivery(), Limit: cfg.Limit(rb), CoolOff: cfg.CoolOff(rb), LimitKey: rb.LimitKey()}
		if rb.OnUnknownOutcome == config.UnknownDeadLetter {
			robots[i].OnUnknownOutcome = worker.DeadLetter
		}
		if d := rb.Digest; d != nil {
			robots[i].Digest = &worker.Digest{After: time.Duration(d.After), MaxItems: d.MaxItems, Title: d.Title}
		}
	}
	for _, app := range cfg.Apps {
		// The app's reply robot: replies go to each event's session webhook.
		robots = append(robots, worker.Robot{Robot: delivery.Robot{Name: app.Name, Platform: app.Platform},
			Limit: cfg.AppLimit(app), CoolOff: time.Duration(cfg.Platforms[app.Platform].CoolOff), Replies: true})
	}
	return append(robots, poolRobots(cfg)...)
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
// this process with --limiter memory; the function that publishes a
// reloaded configuration's limiter keys (for the tools that read the
// limiter); and the function that closes the store.
func newStore(ctx context.Context, f flags, cfg *config.Config, log *slog.Logger, lookup func(string) (string, bool), h *health) (
	limiter.Limiter, ledger.Ledger, func(context.Context, *config.Config), func(), error) {
	if f.limiter == "memory" {
		log.Warn("--limiter memory: rate limits, cool-offs and the delivery ledger live in this process only; " +
			"run exactly one worker, or robots will exceed their limits and messages may be posted twice")
		h.redisPing = nil
		lim, save := newMemoryLimiter(f, cfg, log)
		return lim, ledger.NewMemory(), func(context.Context, *config.Config) {}, save, nil
	}
	var password string
	if f.redisPasswordEnv != "" {
		v, ok := lookup(f.redisPasswordEnv)
		if !ok || v == "" {
			return nil, nil, nil, nil, fmt.Errorf("--redis-password-env: environment variable %s is not set", f.redisPasswordEnv)
		}
		password = v
	}
	// One address: a single Redis (or, with --redis-cluster, a cluster's
	// configuration endpoint); several, comma-separated: a Redis Cluster.
	// On a cluster the limiter keeps every key of a decision in the robot's
	// slot.
	ropts := &redis.UniversalOptions{
		Addrs:                 strings.Split(f.redisAddr, ","),
		IsClusterMode:         f.redisCluster,
		Password:              password,
		DB:                    f.redisDB,
		ClientName:            "botrelay-worker",
		DialTimeout:           2 * time.Second,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		PoolTimeout:           2 * time.Second,
		PoolSize:              redisPoolSize(cfg.Concurrency),
		MaxRetries:            1,
		ContextTimeoutEnabled: true,
	}
	rdb := redis.NewUniversalClient(ropts)
	if _, cluster := rdb.(*redis.ClusterClient); cluster && f.redisDB != 0 {
		_ = rdb.Close()
		return nil, nil, nil, nil, cli.Usagef("--redis-db must be 0 on a Redis Cluster")
	}
	base := rdb
	rdb, closePiped, err := pipelined(ropts, rdb, f.redisPipeline)
	if err != nil {
		_ = base.Close()
		return nil, nil, nil, nil, err
	}
	closeAll := func() {
		closePiped()
		_ = base.Close()
	}
	// A robot banned just before Redis lost its state has lost its cool-off
	// too: the guard's quiet time covers the longest cool-off configured.
	quiet := cfg.LongestCoolOff()
	lim, err := limiter.NewRedis(rdb, limiter.WithPrefix(cfg.Prefix), limiter.WithRestartGuard(f.restartGuard),
		limiter.WithRestartQuiet(quiet))
	if err != nil {
		closeAll()
		return nil, nil, nil, nil, fmt.Errorf("limiter: %w", err)
	}
	h.redisPing = func(ctx context.Context) error { return base.Ping(ctx).Err() }
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err = lim.Load(lctx)
	switch {
	case errors.Is(err, limiter.ErrEvictionPolicy):
		// Fatal: Redis would silently drop windows and cool-offs.
		closeAll()
		return nil, nil, nil, nil, fmt.Errorf("redis at %s: %w", f.redisAddr, err)
	case err != nil:
		// Not fatal: the worker holds every message (fails closed) and
		// resumes by itself once Redis answers.
		log.Error("Redis unreachable at start; holding all messages until it answers", "redis", f.redisAddr, "err", err)
	default:
		log.Info("connected to Redis", "redis", f.redisAddr, "restart_guard", f.restartGuard, "restart_quiet", quiet)
		publishKeys(lctx, rdb, cfg.Prefix, cfg, log)
	}
	led := ledger.NewRedis(rdb, cfg.Prefix, ledgerTTL(cfg)).WithDoneTTL(max(ledger.DefaultDoneTTL, 3*time.Duration(cfg.AckWait)))
	var tags *ledger.RobotTags
	if _, cluster := rdb.(*redis.ClusterClient); cluster {
		// A message's entry shares its robot's limiter slot, so that the
		// claim and the limiter's decision are one script (pkg/gate).
		tags = ledger.NewRobotTags(limitKeys(cfg))
		led.WithHashTag(tags.Tag)
	}
	publish := func(ctx context.Context, next *config.Config) {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		publishKeys(pctx, rdb, cfg.Prefix, next, log) // under the prefix in force (it needs a restart)
		if tags != nil {
			tags.Set(limitKeys(next)) // the robots added or changed share their new slots
		}
	}
	return lim, led, publish, closeAll, nil
}

// pipelined returns the client the limiter and the ledger use, and what
// closes it: with on and a single Redis, the autopipeliner of a client of
// its own. Hundreds of lanes each waiting on one script are then batched
// into pipelines, and the worker and Redis pay one write and one read for
// many (docs/design/fleet.md, "Worker CPU per message"); each command keeps
// its own result and error. That client never retries: go-redis retries a
// pipeline whole, so one lost answer would run every script of the batch
// again (a failure or a wait counted twice); a failed batch is each lane's
// Redis error instead, which the lanes already survive (they hold their
// messages and try again). It dials once per try, and batches are at most
// about autoPipelineBatch commands, so that a caller (which waits for its
// batch whatever its context says) waits about a second or two, not tens.
// A Cluster client is returned as is: its slot checks need the cluster
// type.
func pipelined(o *redis.UniversalOptions, rdb redis.UniversalClient, on bool) (redis.UniversalClient, func(), error) {
	if _, ok := rdb.(*redis.Client); !ok || !on {
		return rdb, func() {}, nil
	}
	c := redis.NewClient(pipelineOptions(o).Simple())
	cfg := redis.DefaultBlockingAutoPipelineOptions()
	cfg.MaxBatchSize = autoPipelineBatch
	ap, err := c.AutoPipelineWithOptions(cfg)
	if err != nil {
		_ = c.Close()
		return nil, nil, fmt.Errorf("redis autopipeline: %w", err)
	}
	return ap, func() { _ = c.Close() }, nil // closes the autopipeliner too
}

// pipelineOptions are the autopipeliner's client's options: o's, without
// retries and with one dial per try (see [pipelined]).
func pipelineOptions(o *redis.UniversalOptions) *redis.UniversalOptions {
	own := *o
	own.MaxRetries = -1
	own.DialerRetries = 1
	return &own
}

// autoPipelineBatch is the autopipeliner's batch size (a soft bound):
// what one lost answer fails at once.
const autoPipelineBatch = 64

// publishKeys tells the tools that read the limiter without the webhooks
// (console, producer status) each robot's key.
func publishKeys(ctx context.Context, rdb redis.UniversalClient, prefix string, cfg *config.Config, log *slog.Logger) {
	if err := limiter.PublishKeys(ctx, rdb, prefix, limitKeys(cfg)); err != nil {
		log.Warn("could not publish the robots' limiter keys (console and producer status show no limiter state for them)", "err", err)
	}
}

// limitKeys returns each robot's limiter key by name.
func limitKeys(cfg *config.Config) map[string]string {
	keys := make(map[string]string, len(cfg.Robots))
	for _, rb := range cfg.Robots {
		keys[rb.Name] = rb.LimitKey()
	}
	return keys
}

// newMemoryLimiter returns the in-process limiter and the function that
// saves its state at exit. It restores the state saved by the previous clean
// shutdown (--limiter-state), which RestoreState removes so that a crash
// leaves none; without a valid one it grants nothing for the quiet time (the
// longest window+margin or cool-off configured): what this process sent
// before it started is unknown, and a burst now could exceed a window the
// platform still counts, or post into a ban. --restart-guard=false skips the
// quiet time.
func newMemoryLimiter(f flags, cfg *config.Config, log *slog.Logger) (*limiter.Memory, func()) {
	m := limiter.NewMemory(nil)
	quiet := max(cfg.LongestSpan(), cfg.LongestCoolOff())
	restored := false
	if f.limiterState != "" {
		err := m.RestoreState(f.limiterState)
		switch {
		case err == nil:
			restored = true
			log.Info("limiter state restored", "file", f.limiterState)
		case errors.Is(err, os.ErrNotExist):
			log.Warn("no limiter state file (first start, or the last run did not shut down cleanly)", "file", f.limiterState)
		default:
			log.Warn("limiter state file not used", "file", f.limiterState, "err", err)
		}
	}
	switch {
	case restored:
	case !f.restartGuard:
		log.Warn("--restart-guard=false: granting at once without knowing what was sent before this start")
	default:
		m.Quiet(quiet)
		log.Warn("limiter state unknown: holding every robot for the quiet time", "quiet", quiet)
	}
	save := func() {
		if f.limiterState == "" {
			return
		}
		if err := m.SaveState(f.limiterState); err != nil {
			log.Error("could not save the limiter state; the next start waits out the quiet time", "err", err)
			return
		}
		log.Info("limiter state saved", "file", f.limiterState)
	}
	return m, save
}

// ledgerTTL is how long a ledger entry outlives its last change: past
// the longest gap between two deliveries of a message still worked on (a
// cool-off, a backoff, an AckWait), three times over, and at least
// ledger.DefaultTTL.
func ledgerTTL(cfg *config.Config) time.Duration {
	gap := max(cfg.LongestCoolOff(), time.Duration(cfg.Retry.MaxInterval), time.Duration(cfg.AckWait), time.Duration(cfg.HoldMax))
	return max(ledger.DefaultTTL, 3*gap)
}

// health backs /healthz and /readyz.
type health struct {
	running   atomic.Bool
	draining  atomic.Bool
	nc        atomic.Pointer[nats.Conn]
	redisPing func(context.Context) error // nil: no Redis; set before running
	// store reports the limiter's and the ledger's last calls failing
	// (the worker failing closed, e.g. Redis out of memory); set before
	// running.
	store func() error
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
	if h.running.Load() && h.store != nil {
		check("store", h.store())
	}
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = io.WriteString(w, b.String())
}

// readMetricsToken returns the bearer token held by environment variable
// name; "" when name is "".
func readMetricsToken(name string, lookup func(string) (string, bool)) (string, error) {
	if name == "" {
		return "", nil
	}
	v, _ := lookup(name)
	if v = strings.TrimSpace(v); v == "" {
		return "", fmt.Errorf("--metrics-token-env: environment variable %s is not set", name)
	}
	return v, nil
}

// protect requires "Authorization: Bearer <token>" on next; with an empty
// token it is next.
func protect(next http.Handler, token string) http.Handler {
	if token == "" {
		return next
	}
	want := sha256.Sum256([]byte("Bearer " + token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// startMetrics serves, on addr until the returned stop is called, /metrics
// with metrics (nil: not served) and /healthz and /readyz with h (nil: not
// served).
func startMetrics(addr string, metrics http.Handler, h *health, log *slog.Logger, listening func(net.Addr)) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	if h != nil {
		mux.HandleFunc("GET /healthz", h.live)
		mux.HandleFunc("GET /readyz", h.ready)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server failed", "err", err)
		}
	})
	log.Info("serving metrics", "addr", ln.Addr().String(), "metrics", metrics != nil, "probes", h != nil)
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

// maxRobotLines is the most robots logged one line each at start; a
// bigger fleet is logged as counts per platform.
const maxRobotLines = 100

// logRobots logs the configured robots: one line each for a small fleet,
// else one line with the count per platform.
func logRobots(log *slog.Logger, cfg *config.Config) {
	if len(cfg.Robots) > maxRobotLines {
		per := map[string]int{}
		for _, rb := range cfg.Robots {
			per[rb.Platform]++
		}
		log.Info("robots configured", "robots", len(cfg.Robots), "per_platform", per, "pools", len(cfg.Pools))
		return
	}
	for _, rb := range cfg.Robots {
		l := cfg.Limit(rb)
		log.Info("robot configured", "robot", rb.Name, "platform", rb.Platform,
			"webhook", delivery.Redact(rb.Webhook), "limit_key", rb.LimitKey(), "limit", l.Max, "window", l.Window, "signed", rb.Secret != "")
	}
}

// redisPoolSize is the worker's Redis connections (per node on a
// cluster): every write slot's claim and every finished request's mark
// may be in flight at once, so go-redis's default of ten per CPU made
// lanes queue for a connection while holding a write slot.
func redisPoolSize(concurrency int) int {
	return max(4*concurrency, 10*runtime.GOMAXPROCS(0))
}
