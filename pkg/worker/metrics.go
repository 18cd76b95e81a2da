package worker

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the worker's Prometheus collectors. Labels carry robot names
// only, never webhooks or secrets.
type Metrics struct {
	deliveries       *prometheus.CounterVec
	deadLetters      *prometheus.CounterVec
	limiterWaits     *prometheus.CounterVec
	limiterErrors    prometheus.Counter
	ledgerErrors     prometheus.Counter
	deadLetterErrors prometheus.Counter
	panics           prometheus.Counter
	coolOffs         *prometheus.CounterVec
	duplicates       *prometheus.CounterVec
	latency          *prometheus.HistogramVec
	backlog          *prometheus.GaugeVec
	unserved         prometheus.Gauge
	digestItems      *prometheus.CounterVec // digest.go
	digests          *prometheus.CounterVec
	poolMembers      *prometheus.GaugeVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered, still counted).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "botrelay_delivery_attempts_total", Help: "HTTP delivery attempts by robot and outcome.",
		}, []string{"robot", "outcome"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "botrelay_dead_letters_total", Help: "Messages dead-lettered by robot and reason.",
		}, []string{"robot", "reason"}),
		limiterWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "botrelay_limiter_waits_total", Help: "Times a message waited for a rate slot or a cool-off.",
		}, []string{"robot"}),
		limiterErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "botrelay_limiter_errors_total", Help: "Limiter errors (e.g. Redis unreachable); the worker fails closed.",
		}),
		ledgerErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "botrelay_ledger_errors_total", Help: "Ledger errors (e.g. Redis unreachable or out of memory); deliveries go on without the idempotency check, and the limiter fails closed.",
		}),
		deadLetterErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "botrelay_dead_letter_errors_total", Help: "Dead-letter publishes that failed (e.g. the dead-letter stream full); the message is kept and its robot waits.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "botrelay_panics_total", Help: "Messages whose handling panicked; each is dead-lettered with reason panic.",
		}),
		coolOffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "botrelay_cool_offs_total", Help: "Cool-offs started after a platform throttled a robot.",
		}, []string{"robot"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "botrelay_duplicates_skipped_total", Help: "Redelivered messages acked without posting because the ledger marks them delivered.",
		}, []string{"robot"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "botrelay_backlog_messages", Help: "Messages waiting in the outbound stream per robot (refreshed every sweep interval).",
		}, []string{"robot"}),
		unserved: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "botrelay_unserved_robots", Help: "Configured robots this worker cannot serve: their consumer could not be created (e.g. the server's consumer limit).",
		}),
		poolMembers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "botrelay_pool_member_state", Help: "Whether a robot pool's member is in rotation (1) or out after a failure of its own, such as a token not found or a disabled robot (0).",
		}, []string{"pool", "robot"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "botrelay_delivery_seconds", Help: "Duration of one HTTP delivery attempt.",
			Buckets: prometheus.DefBuckets,
		}, []string{"robot"}),
	}
	m.digestItems, m.digests = newDigestMetrics(reg)
	if reg != nil {
		reg.MustRegister(m.deliveries, m.deadLetters, m.limiterWaits, m.limiterErrors, m.ledgerErrors, m.deadLetterErrors, m.panics, m.coolOffs, m.duplicates, m.latency, m.backlog, m.unserved, m.poolMembers)
	}
	return m
}

// forget deletes the series of a robot (or pool) that is no longer
// configured, so a fleet changed by reloads does not keep a series per
// robot it ever had. A counter that comes back later starts from zero,
// which Prometheus reads as a reset.
func (m *Metrics) forget(name string) {
	byRobot := prometheus.Labels{"robot": name}
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.deliveries, m.deadLetters, m.limiterWaits, m.coolOffs, m.duplicates, m.latency, m.backlog, m.digestItems, m.digests, m.poolMembers} {
		v.DeletePartialMatch(byRobot)
	}
	m.poolMembers.DeletePartialMatch(prometheus.Labels{"pool": name})
}
