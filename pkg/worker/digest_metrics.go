package worker

import "github.com/prometheus/client_golang/prometheus"

// newDigestMetrics creates the digest counters, registered with reg when
// set: botrelay_digest_items_total{robot} and botrelay_digests_total{robot}.
func newDigestMetrics(reg prometheus.Registerer) (items, digests *prometheus.CounterVec) {
	items = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "botrelay_digest_items_total", Help: "Messages posted folded into digests, by robot.",
	}, []string{"robot"})
	digests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "botrelay_digests_total", Help: "Digests posted (accepted by the platform), by robot.",
	}, []string{"robot"})
	if reg != nil {
		reg.MustRegister(items, digests)
	}
	return items, digests
}
