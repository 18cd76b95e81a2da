package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/stream"
)

// Robot is what the console knows of a configured robot: no webhook, no
// secret.
type Robot struct {
	Name     string
	Platform string
	Limit    limiter.Limit
}

// Config configures a [Server]. Zero values mean the documented defaults.
type Config struct {
	// JetStream reads the streams; required.
	JetStream jetstream.JetStream
	// Topology names the deployment's streams (its Prefix).
	Topology stream.Topology
	// Robots are the configured robots.
	Robots []Robot
	// ConfigName names the configuration in diagnoses (e.g. robots.yaml).
	ConfigName string
	// Limiter reads the robots' limiter state; nil: limiter columns
	// unknown.
	Limiter limiter.Inspector
	// Refresh is how often the fleet snapshot is read again; default 10s.
	Refresh time.Duration
	// MaxScan is how many dead letters (the newest) a refresh reads for
	// the chart and the counts by reason; default 50,000.
	MaxScan int
	// WorkerMetrics are URLs of the workers' /metrics, read at every
	// refresh for the deliveries chart. A host name is resolved to all its
	// addresses (a headless Service names every worker). None: no chart.
	WorkerMetrics []string
	// MetricsToken is sent as a bearer token to WorkerMetrics.
	MetricsToken string
	// Token, when set, is the operator credential every request must
	// carry: "Authorization: Bearer <Token>" or the cookie set by /login.
	Token string
	// ProxyHeader, when set, names a header an authenticating proxy (an
	// OIDC proxy such as oauth2-proxy) sets to the user; requests without
	// it are refused.
	ProxyHeader string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// HTTPClient reads WorkerMetrics; default a client with a 5s timeout.
	HTTPClient *http.Client
}

// ErrInvalidConfig is wrapped by the errors of [New].
var ErrInvalidConfig = errors.New("console: invalid config")

// maxSamples is how many deliveries samples are kept (an hour at 10s).
const maxSamples = 360

// Server serves the console. Create it with [New]; call [Server.Run] to
// keep its snapshot fresh, and serve [Server.Handler].
type Server struct {
	cfg    Config
	log    *slog.Logger
	robots map[string]Robot
	now    func() time.Time

	mu      sync.Mutex
	snap    *Snapshot
	samples []Sample
	fresh   chan struct{} // closed when the first snapshot is there
	kick    chan struct{} // asks Run for a refresh now
}

// New validates cfg and returns a server.
func New(cfg Config) (*Server, error) {
	if cfg.JetStream == nil {
		return nil, fmt.Errorf("%w: JetStream is required", ErrInvalidConfig)
	}
	if err := cfg.Topology.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 10 * time.Second
	}
	if cfg.MaxScan <= 0 {
		cfg.MaxScan = 50_000
	}
	if cfg.ConfigName == "" {
		cfg.ConfigName = "the configuration"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, robots: make(map[string]Robot, len(cfg.Robots)),
		fresh: make(chan struct{}), kick: make(chan struct{}, 1)}
	for _, rb := range cfg.Robots {
		if _, dup := s.robots[rb.Name]; dup {
			return nil, fmt.Errorf("%w: robot %q listed twice", ErrInvalidConfig, rb.Name)
		}
		s.robots[rb.Name] = rb
	}
	return s, nil
}

// Run refreshes the snapshot every Refresh (and soon after a replay or a
// delete) until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Refresh)
	defer t.Stop()
	for {
		s.refresh(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.kick:
		}
	}
}

// refresh reads a new snapshot.
func (s *Server) refresh(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, max(s.cfg.Refresh, 30*time.Second))
	defer cancel()
	snap := s.collect(rctx)
	if len(s.cfg.WorkerMetrics) > 0 {
		sample, err := s.scrape(rctx)
		if err != nil {
			s.log.Warn("reading worker metrics", "err", err)
		}
		s.mu.Lock()
		if err == nil {
			s.samples = append(s.samples, sample)
			if len(s.samples) > maxSamples {
				s.samples = s.samples[len(s.samples)-maxSamples:]
			}
		}
		snap.Deliveries = append([]Sample(nil), s.samples...)
		s.mu.Unlock()
	}
	if snap.Err != "" {
		s.log.Warn("fleet snapshot incomplete", "err", snap.Err)
	}
	s.mu.Lock()
	first := s.snap == nil
	s.snap = snap
	s.mu.Unlock()
	if first {
		close(s.fresh)
	}
}

// requestRefresh asks Run for a refresh soon.
func (s *Server) requestRefresh() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// snapshot returns the latest snapshot, waiting for the first one (which
// Run reads) until ctx is done or a minute has passed.
func (s *Server) snapshot(ctx context.Context) (*Snapshot, error) {
	wait := time.NewTimer(time.Minute)
	defer wait.Stop()
	select {
	case <-s.fresh:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-wait.C:
		return nil, errors.New("console: no fleet snapshot yet")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap, nil
}
