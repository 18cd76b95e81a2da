package gateway

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the gateway's Prometheus metrics. Their labels hold token
// names (from the tokens file; "" without authentication or for a refused
// token) and HTTP statuses, never a token or a robot: bounded cardinality.
type Metrics struct {
	requests *prometheus.CounterVec
	stored   *prometheus.CounterVec
}

// NewMetrics returns the gateway's metrics, registered with reg when it is
// not nil:
//
//   - botrelay_gateway_requests_total{token,endpoint,status}
//   - botrelay_gateway_messages_stored_total{token}: messages stored (batch
//     lines, fan-out copies, split parts; duplicates not counted)
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "botrelay_gateway_requests_total", Help: "Requests to the /v1/ endpoints by token name, endpoint and HTTP status.",
		}, []string{"token", "endpoint", "status"}),
		stored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "botrelay_gateway_messages_stored_total", Help: "Messages stored in the outbound stream by token name (duplicates not counted).",
		}, []string{"token"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.stored)
	}
	return m
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// observe counts one request; token is "" when none was authenticated.
func (m *Metrics) observe(token, endpoint string, status int) {
	if m != nil {
		m.requests.WithLabelValues(token, endpoint, strconv.Itoa(status)).Inc()
	}
}

// storedN counts n messages stored for token.
func (m *Metrics) storedN(token string, n int) {
	if m != nil && n > 0 {
		m.stored.WithLabelValues(token).Add(float64(n))
	}
}

// Unwrap gives http.ResponseController (and http.MaxBytesReader) the
// underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
