package gateway_test

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/gateway"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{Metrics: gateway.NewMetrics(reg), Access: []gateway.Token{
		{Name: "team-a", SHA256: sha256.Sum256([]byte(tokA)), Robots: []string{"team-a-*"}},
	}})
	accepted(t, f.post(t, "/v1/messages", `{"robot":"team-a-1","text":"hi","id":"m-1"}`, bearer(tokA)...))
	accepted(t, f.post(t, "/v1/messages", `{"robot":"team-a-1","text":"hi","id":"m-1"}`, bearer(tokA)...)) // a duplicate
	multi(t, f.post(t, "/v1/fanout", `{"robots":["team-a-1","team-a-2"],"text":"hi"}`, bearer(tokA)...), http.StatusAccepted)
	require.Equal(t, http.StatusForbidden, f.post(t, "/v1/messages", `{"robot":"ops","text":"hi"}`, bearer(tokA)...).status)
	require.Equal(t, http.StatusUnauthorized, f.post(t, "/v1/messages", `{"robot":"ops","text":"hi"}`, bearer(tokB)...).status)

	require.Equal(t, map[string]float64{
		`botrelay_gateway_messages_stored_total{token="team-a"}`:                               3,
		`botrelay_gateway_requests_total{endpoint="/v1/fanout",status="202",token="team-a"}`:   1,
		`botrelay_gateway_requests_total{endpoint="/v1/messages",status="202",token="team-a"}`: 2,
		`botrelay_gateway_requests_total{endpoint="/v1/messages",status="401",token=""}`:       1,
		`botrelay_gateway_requests_total{endpoint="/v1/messages",status="403",token="team-a"}`: 1,
	}, gather(t, reg))
	require.NotContains(t, fmt.Sprint(gather(t, reg)), "S3cret")
}

// gather returns every counter of reg as "name{label="value",...}" → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = m.GetCounter().GetValue()
		}
	}
	return out
}
