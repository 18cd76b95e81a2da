// Package reload puts a changed configuration file into service in a
// running worker: each new content is parsed and validated completely
// (secrets read), compared with what runs, and only then applied; a file
// with any problem changes nothing, and every problem is logged.
//
// The settings a worker reads only at start (see [config.Diff].Restart) are
// never applied: a change to them is logged as needing a restart, and the
// robots of the same file are applied all the same.
package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/botrelay/botrelay/pkg/config"
)

// Config configures a [Reloader].
type Config struct {
	// Path is the configuration file, for the logs.
	Path string
	// Lookup reads the environment (${NAME}, secret_env); nil means none
	// is set.
	Lookup func(string) (string, bool)
	// Apply puts the robots and apps of a validated configuration into
	// service (the worker's Reload); it is called with nothing else running
	// it. An error means it changed nothing: the reload failed. Required.
	Apply func(*config.Config) error
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics (see [Metrics]); nil: not exported.
	Registerer prometheus.Registerer
	// Now is the clock of the last-success timestamp; nil means time.Now.
	Now func() time.Time
}

// Metrics are the reloads' series:
//
//	botrelay_config_reloads_total                          successful reloads
//	botrelay_config_reload_failures_total                  reloads refused (the old configuration kept)
//	botrelay_config_last_reload_success_timestamp_seconds  the last success (or the start)
//	botrelay_config_reload_ok                              1 when the last reload succeeded, else 0
//	botrelay_config_restart_required                       1 while the file changes a setting read only at start
type Metrics struct {
	reloads, failures prometheus.Counter
	lastSuccess, ok   prometheus.Gauge
	restart           prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reloads: prometheus.NewCounter(prometheus.CounterOpts{Name: "botrelay_config_reloads_total",
			Help: "Configuration reloads applied."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "botrelay_config_reload_failures_total",
			Help: "Configuration reloads refused (a broken file, or one the worker rejected); the old configuration stays."}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "botrelay_config_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful configuration load (the start, or a reload)."}),
		ok: prometheus.NewGauge(prometheus.GaugeOpts{Name: "botrelay_config_reload_ok",
			Help: "1 when the last configuration load succeeded, 0 when it was refused."}),
		restart: prometheus.NewGauge(prometheus.GaugeOpts{Name: "botrelay_config_restart_required",
			Help: "1 while the configuration file changes a setting the worker reads only at start (see the log)."}),
	}
	if reg != nil {
		reg.MustRegister(m.reloads, m.failures, m.lastSuccess, m.ok, m.restart)
	}
	return m
}

// ErrApply is matched by a reload that the configuration passed but Apply
// refused.
var ErrApply = errors.New("reload: not applied")

// Reloader applies configuration changes; see the package doc.
type Reloader struct {
	cfg     Config
	log     *slog.Logger
	m       *Metrics
	mu      sync.Mutex
	started *config.Config // what the process started with: the restart-only settings in force
	current *config.Config // the configuration applied last
}

// New returns a reloader of a worker running started, the configuration it
// loaded at start.
func New(cfg Config, started *config.Config) (*Reloader, error) {
	if cfg.Apply == nil || started == nil {
		return nil, errors.New("reload: Apply and the started configuration are required")
	}
	if cfg.Lookup == nil {
		cfg.Lookup = func(string) (string, bool) { return "", false }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Reloader{cfg: cfg, log: log, m: newMetrics(cfg.Registerer), started: started, current: started}
	r.m.ok.Set(1)
	r.m.lastSuccess.Set(float64(cfg.Now().UnixNano()) / 1e9)
	return r, nil
}

// Run calls [Reloader.Handle] with every change w reports until ctx is
// done.
func (r *Reloader) Run(ctx context.Context, w *config.Watcher) {
	w.Run(ctx, func(c config.Change) { _, _ = r.Handle(c) })
}

// Handle takes one change of the file: it parses and validates the new
// content, applies it when valid and returns what changed. An error (the
// file unreadable or invalid, or Apply refusing it) leaves the running
// configuration as it was; every problem was logged and counted.
func (r *Reloader) Handle(c config.Change) (config.Diff, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	why := "file changed"
	if c.Forced {
		why = "reload requested"
	}
	if c.Err != nil {
		return config.Diff{}, r.failed(why, c.Err)
	}
	next, err := config.Parse(c.Data, r.cfg.Lookup)
	if err != nil {
		return config.Diff{}, r.failed(why, err)
	}
	d := config.Compare(r.current, next)
	d.Restart = config.Compare(r.started, next).Restart
	if err := r.cfg.Apply(next); err != nil {
		return config.Diff{}, r.failed(why, fmt.Errorf("%w: %w", ErrApply, err))
	}
	r.current = next
	r.m.reloads.Inc()
	r.m.ok.Set(1)
	r.m.lastSuccess.Set(float64(r.cfg.Now().UnixNano()) / 1e9)
	for _, w := range next.Warnings() {
		r.log.Warn("config: " + w)
	}
	if len(d.Restart) > 0 {
		r.m.restart.Set(1)
		r.log.Warn("configuration changes that need a restart were not applied (the robots were)",
			"file", r.cfg.Path, "settings", strings.Join(d.Restart, ", "))
	} else {
		r.m.restart.Set(0)
	}
	r.log.Info("configuration reloaded", "file", r.cfg.Path, "why", why, "robots", len(next.Robots), "apps", len(next.Apps),
		"added", names(d.Added), "changed", names(d.Changed), "removed", names(d.Removed), "hash", short(c.Hash))
	return d, nil
}

// failed logs every problem of a refused reload and counts it.
func (r *Reloader) failed(why string, err error) error {
	r.m.failures.Inc()
	r.m.ok.Set(0)
	problems := config.Problems(err)
	for _, p := range problems {
		r.log.Error("configuration problem", "file", r.cfg.Path, "problem", p)
	}
	r.log.Error("configuration reload failed: the running configuration stays", "file", r.cfg.Path, "why", why,
		"problems", len(problems))
	return err
}

// names lists up to 20 names for a log line.
func names(s []string) string {
	const most = 20
	if len(s) > most {
		return strings.Join(s[:most], ",") + fmt.Sprintf(" and %d more", len(s)-most)
	}
	return strings.Join(s, ",")
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}
