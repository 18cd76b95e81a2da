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
	"os/signal"
	"strings"
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
	"github.com/botrelay/botrelay/pkg/alertmanager"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/gateway"
	"github.com/botrelay/botrelay/pkg/inbound"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/stream"
)

// flags are the parsed command line.
type flags struct {
	listen          string
	natsURL         string
	prefix          string
	prefixSet       bool // by --prefix or BOTRELAY_PREFIX
	tokenEnv        string
	tokensFile      string
	noAuth          bool
	redisAddr       string
	redisPassEnv    string
	metricsAddr     string
	tlsCert         string
	tlsKey          string
	robots          string
	configPath      string
	alertTemplate   string
	maxBody         int64
	maxAMBody       int64
	shutdownTimeout time.Duration
	logLevel        slog.Level
	logFormat       string
}

// run is the gateway command; see the package doc.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return runEnv(ctx, args, stdout, stderr, cli.Env{Lookup: os.LookupEnv}, hup)
}

// runEnv is run in the environment e; e.Listening is told the HTTP
// server's address. Each value received on reload (SIGHUP) rereads the
// tokens file.
func runEnv(ctx context.Context, args []string, _, stderr io.Writer, e cli.Env, reload <-chan os.Signal) error {
	f, err := parseFlags(args, stderr, e.Lookup)
	if err != nil {
		return err
	}
	tokens, err := readTokens(f.tokenEnv, e.Lookup)
	if err != nil {
		return err
	}
	var access []gateway.Token
	if f.tokensFile != "" {
		if access, err = readTokensFile(f.tokensFile, e.Lookup); err != nil {
			return err
		}
	}
	if len(tokens) == 0 && len(access) == 0 && !f.noAuth {
		return cli.Usagef("no tokens: give --tokens-file or --token-env, or --no-auth to accept every request without authentication")
	}
	acc, err := allowList(f, e.Lookup)
	if err != nil {
		return err
	}
	if acc.alerts, err = readAlertTemplate(f.alertTemplate); err != nil {
		return err
	}
	topo := stream.Topology{Prefix: f.prefix}
	if !f.prefixSet && acc.prefix != "" {
		topo.Prefix = acc.prefix
	}
	if err := topo.Validate(); err != nil {
		return cli.Usagef("--prefix: %w", err)
	}
	log, err := cli.NewLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	return serve(ctx, f, topo, auth{tokens: tokens, access: access, apps: acc.apps}, acc, log, e, reload)
}

// readAlertTemplate reads and checks the --alertmanager-template file;
// nil (the default template) without one.
func readAlertTemplate(path string) (*alertmanager.Renderer, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--alertmanager-template: %w", err)
	}
	r, err := alertmanager.New(string(data))
	if err != nil {
		return nil, fmt.Errorf("--alertmanager-template %s: %w", path, err)
	}
	return r, nil
}

// auth is the authentication the gateway starts with.
type auth struct {
	tokens []string        // --token-env: every robot, no rate
	access []gateway.Token // --tokens-file
	apps   []gateway.App   // --config apps
}

func parseFlags(args []string, stderr io.Writer, lookup func(string) (string, bool)) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	prefix, prefixFromEnv := lookup(cli.EnvPrefix)
	prefixFromEnv = prefixFromEnv && prefix != ""
	if !prefixFromEnv {
		prefix = stream.DefaultPrefix
	}
	fs.StringVar(&f.listen, "listen", ":8080", "HTTP address")
	fs.StringVar(&f.natsURL, "nats", cli.EnvOr(lookup, cli.EnvNATSURL, cli.DefaultNATSURL), "NATS server URL(s), comma-separated (env "+cli.EnvNATSURL+")")
	fs.StringVar(&f.prefix, "prefix", prefix, "subject and stream prefix (env "+cli.EnvPrefix+", else the --config file's)")
	fs.StringVar(&f.tokenEnv, "token-env", "", "environment variable holding bearer tokens accepted for every robot without a rate, comma-separated")
	fs.StringVar(&f.tokensFile, "tokens-file", "", "YAML file of named tokens with robot scopes, rates and quotas (reloaded on SIGHUP)")
	fs.BoolVar(&f.noAuth, "no-auth", false, "accept every request without a token (trusted networks only)")
	fs.StringVar(&f.redisAddr, "redis", cli.EnvOr(lookup, cli.EnvRedisAddr, "127.0.0.1:6379"), "Redis for the tokens' rates and quotas: host:port, or cluster nodes comma-separated (env "+cli.EnvRedisAddr+")")
	fs.StringVar(&f.redisPassEnv, "redis-password-env", "", "name of the environment variable holding the Redis password")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at GET /metrics on this address (default: none)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file; needs --tls-key")
	fs.StringVar(&f.tlsKey, "tls-key", "", "the PEM private key of --tls-cert")
	fs.StringVar(&f.robots, "robots", "", "comma-separated robots to accept (default: any)")
	fs.StringVar(&f.configPath, "config", "", "worker config file to take the accepted robots from (names only)")
	fs.StringVar(&f.alertTemplate, "alertmanager-template", "", "Go text/template file defining \"title\" and \"text\" for POST /v1/alertmanager/{target} (default: the built-in one)")
	fs.Int64Var(&f.maxBody, "max-body", gateway.DefaultMaxBodyBytes, "largest request body in bytes")
	fs.Int64Var(&f.maxAMBody, "max-alertmanager-body", gateway.DefaultMaxAlertmanagerBodyBytes,
		"largest Alertmanager notification in bytes (Alertmanager never retries a 413: keep it above a storm's)")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long requests in flight may take at shutdown")
	cli.AddLogFlags(fs, &f.logLevel, &f.logFormat)
	if err := cli.Parse(fs, args); err != nil {
		return f, err
	}
	f.prefixSet = prefixFromEnv
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "prefix" {
			f.prefixSet = true
		}
	})
	switch {
	case fs.NArg() > 0:
		return f, cli.Usagef("unexpected arguments %q", fs.Args())
	case f.robots != "" && f.configPath != "":
		return f, cli.Usagef("--robots and --config both name the accepted robots: give one")
	case f.maxBody <= 0:
		return f, cli.Usagef("--max-body must be positive, not %d", f.maxBody)
	case f.maxAMBody <= 0:
		return f, cli.Usagef("--max-alertmanager-body must be positive, not %d", f.maxAMBody)
	case f.shutdownTimeout <= 0:
		return f, cli.Usagef("--shutdown-timeout must be positive, not %s", f.shutdownTimeout)
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return f, cli.Usagef("--tls-cert and --tls-key go together")
	case f.noAuth && (f.tokenEnv != "" || f.tokensFile != ""):
		return f, cli.Usagef("--no-auth with --token-env or --tokens-file: choose one")
	}
	return f, cli.CheckLogFormat(f.logFormat)
}

// readTokens returns the comma-separated tokens of environment variable
// name; none when name is "".
func readTokens(name string, lookup func(string) (string, bool)) ([]string, error) {
	if name == "" {
		return nil, nil
	}
	v, _ := lookup(name)
	var tokens []string
	for t := range strings.SplitSeq(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tokens = append(tokens, t)
		}
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("--token-env: environment variable %s is not set or holds no token", name)
	}
	return tokens, nil
}

// readTokensFile reads and checks the tokens file at path.
func readTokensFile(path string, lookup func(string) (string, bool)) ([]gateway.Token, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--tokens-file: %w", err)
	}
	tokens, err := gateway.ParseTokens(data, lookup)
	if err != nil {
		return nil, fmt.Errorf("--tokens-file %s: %w", path, err)
	}
	return tokens, nil
}

// accepted is what the gateway takes from --robots or --config.
type accepted struct {
	// robots are the accepted robots and pools (nil: any name).
	robots []string
	// prefix is the config file's ("" without --config).
	prefix string
	// With --config: each target's platform size rules (nil: DingTalk's
	// for all), groups, security keywords and apps (with their secrets:
	// the gateway verifies their callbacks).
	size     func(string) envelope.Limits
	groups   func(string) ([]string, bool)
	keywords func(string) []string
	apps     []gateway.App
	// alerts renders Alertmanager notifications (nil: the default).
	alerts *alertmanager.Renderer
}

// allowList returns what the gateway accepts, from --robots or --config.
func allowList(f flags, lookup func(string) (string, bool)) (accepted, error) {
	if f.robots != "" {
		var robots []string
		for r := range strings.SplitSeq(f.robots, ",") {
			if r = strings.TrimSpace(r); r != "" {
				robots = append(robots, r)
			}
		}
		return accepted{robots: robots}, nil
	}
	if f.configPath == "" {
		return accepted{}, nil
	}
	// The gateway needs the names only: secrets are dropped and a variable
	// it does not have (a webhook) gets a placeholder.
	cfg, err := cli.LoadWithoutSecrets(f.configPath, lookup)
	if err != nil {
		return accepted{}, fmt.Errorf("--config: %w", err)
	}
	var apps []gateway.App
	for _, app := range cfg.Apps {
		// LoadWithoutSecrets stands in for unset variables: an app secret
		// must be real.
		if _, ok := lookup(app.AppSecretEnv); app.AppSecretEnv != "" && !ok {
			return accepted{}, fmt.Errorf("--config: app %s: app_secret_env: environment variable %s is not set", app.Name, app.AppSecretEnv)
		}
		apps = append(apps, gateway.App{Name: app.Name, Secret: app.AppSecret})
	}
	return accepted{robots: cfg.Targets(), prefix: cfg.Prefix, size: cfg.TargetSize, groups: cfg.GroupMembers,
		keywords: cfg.TargetKeywords, apps: apps}, nil
}

// serve connects to NATS, serves the gateway until ctx is done, then shuts
// the HTTP server down gracefully. A value on reload rereads the tokens file.
func serve(ctx context.Context, f flags, topo stream.Topology, a auth, acc accepted, log *slog.Logger, e cli.Env, reload <-chan os.Signal) error {
	nc, err := connectNATS(f.natsURL, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	var popts []publisher.Option
	if acc.size != nil {
		popts = append(popts, publisher.WithSizeRules(acc.size))
	}
	if acc.groups != nil {
		popts = append(popts, publisher.WithGroups(acc.groups))
	}
	pub, err := publisher.New(js, topo, popts...)
	if err != nil {
		return err
	}
	var lim *gateway.Limiter
	if f.tokensFile != "" {
		rdb, err := redisClient(f, e.Lookup)
		if err != nil {
			return err
		}
		defer func() { _ = rdb.Close() }()
		if lim, err = gateway.NewLimiter(rdb, topo.Prefix); err != nil {
			return err
		}
	}
	var metrics *gateway.Metrics
	if f.metricsAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		metrics = gateway.NewMetrics(reg)
		stop, err := serveMetrics(f.metricsAddr, reg, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	var stopping atomic.Bool
	g, err := gateway.New(pub, gateway.Options{
		Metrics:                  metrics,
		Logger:                   log,
		MaxBodyBytes:             f.maxBody,
		MaxAlertmanagerBodyBytes: f.maxAMBody,
		Tokens:                   a.tokens,
		Access:                   a.access,
		NoAuth:                   f.noAuth,
		Limiter:                  lim,
		Robots:                   acc.robots,
		Size:                     acc.size,
		Alerts:                   acc.alerts,
		Keywords:                 acc.keywords,
		Apps:                     a.apps,
		Inbound: func(ctx context.Context, ev *inbound.Event) (uint64, error) {
			return inbound.Publish(ctx, js, topo, ev)
		},
		Events: func(ctx context.Context, id string) (*inbound.Event, error) { return inbound.Get(ctx, js, topo, id) },
		Ready:  func() bool { return !stopping.Load() && nc.IsConnected() },
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() {
		if f.tlsCert != "" {
			served <- srv.ServeTLS(ln, f.tlsCert, f.tlsKey)
			return
		}
		served <- srv.Serve(ln)
	}()

	if f.noAuth {
		log.Warn("--no-auth: the gateway accepts every request without authentication; expose it to trusted networks only")
	}
	if len(acc.robots) > 0 {
		log.Info("accepting only the listed robots and pools", "targets", len(acc.robots))
	}
	log.Info("serving", "addr", ln.Addr().String(), "tls", f.tlsCert != "", "prefix", topo.Prefix, "tokens", len(a.tokens)+len(a.access))
	if e.Listening != nil {
		e.Listening(ln.Addr())
	}

wait:
	for {
		select {
		case err := <-served:
			return fmt.Errorf("http server: %w", err)
		case <-reload:
			if f.tokensFile == "" {
				log.Info("SIGHUP: no --tokens-file to reload")
				continue
			}
			tokens, err := readTokensFile(f.tokensFile, e.Lookup)
			if err == nil {
				err = g.SetTokens(tokens)
			}
			if err != nil {
				log.Error("tokens file not reloaded; the tokens in use are kept", "err", err)
				continue
			}
			log.Info("tokens file reloaded", "tokens", len(tokens))
		case <-ctx.Done():
			break wait
		}
	}
	stopping.Store(true)
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	log.Info("stopped")
	return nil
}

// serveMetrics serves GET /metrics of reg on addr until stop is called.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server failed", "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// redisClient returns the client of --redis: one address is a single
// Redis, several comma-separated a Redis Cluster. It connects lazily.
func redisClient(f flags, lookup func(string) (string, bool)) (redis.UniversalClient, error) {
	var password string
	if f.redisPassEnv != "" {
		v, ok := lookup(f.redisPassEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("--redis-password-env: environment variable %s is not set", f.redisPassEnv)
		}
		password = v
	}
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 strings.Split(f.redisAddr, ","),
		Password:              password,
		ClientName:            "botrelay-gateway",
		DialTimeout:           2 * time.Second,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		PoolTimeout:           2 * time.Second,
		MaxRetries:            1,
		ContextTimeoutEnabled: true,
	}), nil
}

// connectNATS connects to url, retrying in the background when NATS is not
// reachable yet (the gateway serves, and reports not ready, meanwhile) and
// reconnecting forever after an outage.
func connectNATS(url string, log *slog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(url, append([]nats.Option{
		nats.Name("botrelay-gateway"),
		nats.Timeout(2 * time.Second),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ConnectHandler(func(c *nats.Conn) {
			log.Info("connected to NATS", "server", cli.RedactURL(c.ConnectedUrlRedacted()))
		}),
	}, cli.LogNATSEvents(log)...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", cli.RedactURL(url), err)
	}
	if !nc.IsConnected() { // the connect handler logs the connection
		log.Warn("NATS not reachable yet; retrying in the background", "server", cli.RedactURL(url))
	}
	return nc, nil
}
