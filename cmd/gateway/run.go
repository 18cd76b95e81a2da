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
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/gateway"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/stream"
)

// Defaults of the connection flags, and the environment variables that
// override them.
const (
	defaultNATSURL = "nats://127.0.0.1:4222"
	envNATSURL     = "BOTRELAY_NATS_URL"
	envPrefix      = "BOTRELAY_PREFIX"
)

// placeholderValue stands in, while the config file is read for its robot
// names, for every ${NAME} not set in the gateway's environment (typically
// the webhooks and secrets, which the gateway has no use for).
const placeholderValue = "https://placeholder.invalid/unset"

// usageError is a command-line mistake (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// exitCode maps run's error to the process exit status: 0 for success and
// -h, 2 for a usage mistake, 1 for everything else.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	default:
		return 1
	}
}

// env is what run takes from its surroundings, so that tests can run it
// in parallel without touching the process's environment.
type env struct {
	// lookup reads environment variables (os.LookupEnv).
	lookup func(string) (string, bool)
	// listening, when set, is told the HTTP server's address.
	listening func(net.Addr)
}

// flags are the parsed command line.
type flags struct {
	listen          string
	natsURL         string
	prefix          string
	prefixSet       bool // by --prefix or BOTRELAY_PREFIX
	tokenEnv        string
	robots          string
	configPath      string
	maxBody         int64
	shutdownTimeout time.Duration
	logLevel        slog.Level
	logFormat       string
}

// run is the gateway command; see the package doc.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runEnv(ctx, args, stdout, stderr, env{lookup: os.LookupEnv})
}

func runEnv(ctx context.Context, args []string, _, stderr io.Writer, e env) error {
	f, err := parseFlags(args, stderr, e.lookup)
	if err != nil {
		return err
	}
	tokens, err := readTokens(f.tokenEnv, e.lookup)
	if err != nil {
		return err
	}
	robots, cfgPrefix, err := allowList(f, e.lookup)
	if err != nil {
		return err
	}
	topo := stream.Topology{Prefix: f.prefix}
	if !f.prefixSet && cfgPrefix != "" {
		topo.Prefix = cfgPrefix
	}
	if err := topo.Validate(); err != nil {
		return usageError{fmt.Errorf("--prefix: %w", err)}
	}
	log := newLogger(stderr, f)
	return serve(ctx, f, topo, tokens, robots, log, e)
}

func parseFlags(args []string, stderr io.Writer, lookup func(string) (string, bool)) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	prefix, prefixFromEnv := lookup(envPrefix)
	prefixFromEnv = prefixFromEnv && prefix != ""
	if !prefixFromEnv {
		prefix = stream.DefaultPrefix
	}
	fs.StringVar(&f.listen, "listen", ":8080", "HTTP address")
	fs.StringVar(&f.natsURL, "nats", envOr(lookup, envNATSURL, defaultNATSURL), "NATS server URL(s), comma-separated (env "+envNATSURL+")")
	fs.StringVar(&f.prefix, "prefix", prefix, "subject and stream prefix (env "+envPrefix+", else the --config file's)")
	fs.StringVar(&f.tokenEnv, "token-env", "", "environment variable holding the accepted bearer tokens, comma-separated (none: no authentication)")
	fs.StringVar(&f.robots, "robots", "", "comma-separated robots to accept (default: any)")
	fs.StringVar(&f.configPath, "config", "", "worker config file to take the accepted robots from (names only)")
	fs.Int64Var(&f.maxBody, "max-body", gateway.DefaultMaxBodyBytes, "largest request body in bytes")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long requests in flight may take at shutdown")
	fs.TextVar(&f.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, err
		}
		return f, usageError{err}
	}
	f.prefixSet = prefixFromEnv
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "prefix" {
			f.prefixSet = true
		}
	})
	switch {
	case fs.NArg() > 0:
		return f, usagef("unexpected arguments %q", fs.Args())
	case f.robots != "" && f.configPath != "":
		return f, usagef("--robots and --config both name the accepted robots: give one")
	case f.maxBody <= 0:
		return f, usagef("--max-body must be positive, not %d", f.maxBody)
	case f.shutdownTimeout <= 0:
		return f, usagef("--shutdown-timeout must be positive, not %s", f.shutdownTimeout)
	case f.logFormat != "text" && f.logFormat != "json":
		return f, usagef("--log-format must be text or json, not %q", f.logFormat)
	}
	return f, nil
}

func envOr(lookup func(string) (string, bool), name, def string) string {
	if v, ok := lookup(name); ok && v != "" {
		return v
	}
	return def
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

// allowList returns the accepted robots from --robots or --config (nil:
// any), and the config file's prefix ("" without --config).
func allowList(f flags, lookup func(string) (string, bool)) ([]string, string, error) {
	if f.robots != "" {
		var robots []string
		for r := range strings.SplitSeq(f.robots, ",") {
			if r = strings.TrimSpace(r); r != "" {
				robots = append(robots, r)
			}
		}
		return robots, "", nil
	}
	if f.configPath == "" {
		return nil, "", nil
	}
	data, err := os.ReadFile(f.configPath)
	if err != nil {
		return nil, "", fmt.Errorf("--config: %w", err)
	}
	// The gateway needs the names only: a variable it does not have (a
	// webhook or a secret) gets a placeholder, so the file still validates.
	cfg, err := config.Parse(data, func(name string) (string, bool) {
		if v, ok := lookup(name); ok {
			return v, true
		}
		return placeholderValue, true
	})
	if err != nil {
		return nil, "", fmt.Errorf("--config %s: %w", f.configPath, err)
	}
	return cfg.Names(), cfg.Prefix, nil
}

func newLogger(w io.Writer, f flags) *slog.Logger {
	opts := &slog.HandlerOptions{Level: f.logLevel}
	if f.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve connects to NATS, serves the gateway until ctx is done, then shuts
// the HTTP server down gracefully.
func serve(ctx context.Context, f flags, topo stream.Topology, tokens, robots []string, log *slog.Logger, e env) error {
	nc, err := connectNATS(f.natsURL, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	pub, err := publisher.New(js, topo)
	if err != nil {
		return err
	}
	var stopping atomic.Bool
	g, err := gateway.New(pub, gateway.Options{
		Logger:       log,
		MaxBodyBytes: f.maxBody,
		Tokens:       tokens,
		Robots:       robots,
		Ready:        func() bool { return !stopping.Load() && nc.IsConnected() },
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
	go func() { served <- srv.Serve(ln) }()

	if len(tokens) == 0 {
		log.Warn("no --token-env: the gateway accepts every request without authentication; expose it to trusted networks only")
	}
	if len(robots) > 0 {
		log.Info("accepting only the listed robots", "robots", len(robots))
	}
	log.Info("serving", "addr", ln.Addr().String(), "prefix", topo.Prefix, "tokens", len(tokens))
	if e.listening != nil {
		e.listening(ln.Addr())
	}

	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
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

// connectNATS connects to url, retrying in the background when NATS is not
// reachable yet (the gateway serves, and reports not ready, meanwhile) and
// reconnecting forever after an outage.
func connectNATS(url string, log *slog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name("botrelay-gateway"),
		nats.Timeout(2*time.Second),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ConnectHandler(func(c *nats.Conn) {
			log.Info("connected to NATS", "server", redactURLs(c.ConnectedUrlRedacted()))
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Error("NATS disconnected; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("NATS reconnected", "server", redactURLs(c.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Error("NATS error", "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", redactURLs(url), err)
	}
	if !nc.IsConnected() { // the connect handler logs the connection
		log.Warn("NATS not reachable yet; retrying in the background", "server", redactURLs(url))
	}
	return nc, nil
}

// redactURLs drops the user info (credentials) of each comma-separated URL.
func redactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if at := strings.LastIndex(p, "@"); at >= 0 {
			scheme := ""
			if j := strings.Index(p, "://"); j >= 0 && j < at {
				scheme = p[:j+3]
			}
			p = scheme + "REDACTED@" + p[at+1:]
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}
