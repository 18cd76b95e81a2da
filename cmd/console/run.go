package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/console"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/stream"
)

// flags are the parsed command line.
type flags struct {
	listen           string
	configPath       string
	natsURL          string
	redisAddr        string
	redisPasswordEnv string
	redisDB          int
	redisCluster     bool
	restartGuard     bool
	authTokenEnv     string
	authProxyHeader  string
	workerMetrics    string
	metricsTokenEnv  string
	refresh          time.Duration
	logLevel         slog.Level
	logFormat        string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runEnv(ctx, args, stdout, stderr, cli.Env{Lookup: os.LookupEnv})
}

// runEnv is run in the environment e; e.Listening is told the address.
func runEnv(ctx context.Context, args []string, _, stderr io.Writer, e cli.Env) error {
	f, err := parseFlags(args, stderr, e.Lookup)
	if err != nil {
		return err
	}
	token, err := secretFromEnv("--auth-token-env", f.authTokenEnv, e.Lookup)
	if err != nil {
		return err
	}
	metricsToken, err := secretFromEnv("--worker-metrics-token-env", f.metricsTokenEnv, e.Lookup)
	if err != nil {
		return err
	}
	cfg, err := loadRobots(f.configPath, e.Lookup)
	if err != nil {
		return err
	}
	log, err := cli.NewLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}

	nc, err := nats.Connect(f.natsURL, append([]nats.Option{nats.Name("botrelay-console"), nats.Timeout(2 * time.Second),
		nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true)}, cli.LogNATSEvents(log)...)...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", cli.RedactURL(f.natsURL), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	var insp limiter.Inspector
	if f.redisAddr != "" {
		lim, closeRedis, err := newInspector(f, cfg.Prefix, e.Lookup)
		if err != nil {
			return err
		}
		defer closeRedis()
		insp = lim
	}

	robots := make([]console.Robot, len(cfg.Robots))
	for i, rb := range cfg.Robots {
		robots[i] = console.Robot{Name: rb.Name, Platform: rb.Platform, Limit: cfg.Limit(rb)}
	}
	var wm []string
	for u := range strings.SplitSeq(f.workerMetrics, ",") {
		if u = strings.TrimSpace(u); u != "" {
			wm = append(wm, u)
		}
	}
	srv, err := console.New(console.Config{
		JetStream:     js,
		Topology:      stream.Topology{Prefix: cfg.Prefix},
		Robots:        robots,
		ConfigName:    f.configPath,
		Limiter:       insp,
		Refresh:       f.refresh,
		WorkerMetrics: wm,
		MetricsToken:  metricsToken,
		Token:         token,
		ProxyHeader:   f.authProxyHeader,
		Logger:        log,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Run(runCtx) })
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	auth := "none (loopback only)"
	switch {
	case token != "":
		auth = "operator token"
	case f.authProxyHeader != "":
		auth = "proxy header " + f.authProxyHeader
	}
	log.Info("serving the console", "addr", ln.Addr().String(), "prefix", cfg.Prefix, "robots", len(robots), "auth", auth)
	if e.Listening != nil {
		e.Listening(ln.Addr())
	}

	var serveErr error
	select {
	case err := <-served:
		serveErr = fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	_ = hs.Shutdown(sctx)
	wg.Wait()
	log.Info("stopped")
	return serveErr
}

func parseFlags(args []string, stderr io.Writer, lookup func(string) (string, bool)) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8081", "address to serve the console on (beyond loopback only with authentication)")
	fs.StringVar(&f.configPath, "config", "", "the workers' robots.yaml (names, platforms and limits are read); required")
	fs.StringVar(&f.natsURL, "nats", cli.EnvOr(lookup, cli.EnvNATSURL, cli.DefaultNATSURL), "NATS server URL(s) (env "+cli.EnvNATSURL+")")
	fs.StringVar(&f.redisAddr, "redis", cli.EnvOr(lookup, cli.EnvRedisAddr, "127.0.0.1:6379"), `the workers' Redis, host:port or cluster nodes comma-separated (env `+cli.EnvRedisAddr+`; "" no limiter columns)`)
	fs.StringVar(&f.redisPasswordEnv, "redis-password-env", "", "environment variable holding the Redis password")
	fs.IntVar(&f.redisDB, "redis-db", 0, "Redis database number")
	fs.BoolVar(&f.redisCluster, "redis-cluster", false, "treat a single --redis address as a Redis Cluster endpoint")
	fs.BoolVar(&f.restartGuard, "restart-guard", true, "the workers run with the restart guard (as by default)")
	fs.StringVar(&f.authTokenEnv, "auth-token-env", "", "environment variable holding the operator token")
	fs.StringVar(&f.authProxyHeader, "auth-proxy-header", "", "header an authenticating proxy sets to the user (e.g. X-Auth-Request-User)")
	fs.StringVar(&f.workerMetrics, "worker-metrics", "", "the workers' /metrics URLs, comma-separated, for the deliveries chart")
	fs.StringVar(&f.metricsTokenEnv, "worker-metrics-token-env", "", "environment variable holding the bearer token of --worker-metrics")
	fs.DurationVar(&f.refresh, "refresh", 10*time.Second, "how often the fleet is read")
	cli.AddLogFlags(fs, &f.logLevel, &f.logFormat)
	if err := cli.Parse(fs, args); err != nil {
		return f, err
	}
	switch {
	case fs.NArg() > 0:
		return f, cli.Usagef("unexpected arguments %q", fs.Args())
	case f.configPath == "":
		return f, cli.Usagef("--config is required")
	case f.refresh <= 0:
		return f, cli.Usagef("--refresh must be positive")
	case f.redisDB < 0:
		return f, cli.Usagef("--redis-db must not be negative")
	}
	if f.authTokenEnv == "" && f.authProxyHeader == "" {
		if err := checkLoopback(f.listen); err != nil {
			return f, err
		}
	}
	return f, cli.CheckLogFormat(f.logFormat)
}

// checkLoopback refuses a listen address beyond loopback.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return cli.Usagef("--listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return cli.Usagef("--listen %q is beyond loopback: without an operator credential (--auth-token-env or --auth-proxy-header) "+
		"the console listens on 127.0.0.1 or ::1 only (reach it with kubectl port-forward or a proxy)", addr)
}

// secretFromEnv reads the value of the environment variable named by flag
// (none when name is "").
func secretFromEnv(flagName, name string, lookup func(string) (string, bool)) (string, error) {
	if name == "" {
		return "", nil
	}
	v, _ := lookup(name)
	if v = strings.TrimSpace(v); v == "" {
		return "", fmt.Errorf("%s: environment variable %s is not set", flagName, name)
	}
	return v, nil
}

// loadRobots reads path for its prefix, platforms and robots without their
// credentials: each robot's webhook and secret fields are dropped before
// the file is parsed, so no secret is read (nor needs to be set). The
// robots' limiter keys come from the workers instead ([limiter.LookupKeys]).
func loadRobots(path string, lookup func(string) (string, bool)) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if robots, ok := doc["robots"].([]any); ok {
		for _, r := range robots {
			if m, ok := r.(map[string]any); ok {
				delete(m, "secret")
				delete(m, "secret_env")
				delete(m, "secret_file")
				name, _ := m["name"].(string)
				m["webhook"] = cli.PlaceholderValue(name)
			}
		}
	}
	clean, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg, err := config.Parse(clean, lookup)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// newInspector connects to the workers' Redis for read-only limiter
// inspection by robot name.
func newInspector(f flags, prefix string, lookup func(string) (string, bool)) (limiter.Inspector, func(), error) {
	password, err := secretFromEnv("--redis-password-env", f.redisPasswordEnv, lookup)
	if err != nil {
		return nil, nil, err
	}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 strings.Split(f.redisAddr, ","),
		IsClusterMode:         f.redisCluster,
		Password:              password,
		DB:                    f.redisDB,
		ClientName:            "botrelay-console",
		DialTimeout:           2 * time.Second,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		MaxRetries:            1,
		ContextTimeoutEnabled: true,
	})
	lim, err := limiter.NewRedis(rdb, limiter.WithPrefix(prefix), limiter.WithRestartGuard(f.restartGuard))
	if err != nil {
		_ = rdb.Close()
		return nil, nil, fmt.Errorf("limiter: %w", err)
	}
	// The workers key a robot's window by its webhook's identity, which the
	// console does not read: they publish the keys by name.
	return limiter.NewKeyedInspector(lim, rdb, prefix, 0), func() { _ = rdb.Close() }, nil
}
