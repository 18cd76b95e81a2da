package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/ledger"
)

// /readyz answers 503 while the worker fails closed on its store (the
// limiter's or the ledger's calls failing, e.g. Redis out of memory), even
// though Redis still answers PING.
func TestReadyReportsFailingStore(t *testing.T) {
	h := &health{}
	var storeErr error
	h.store = func() error { return storeErr }
	h.running.Store(true)
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		h.ready(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	code, body := get()
	require.Equal(t, http.StatusServiceUnavailable, code, "no NATS connection in this test")
	require.Contains(t, body, "store: ok\n")

	storeErr = errors.New("limiter refused by an out-of-memory Redis (maxmemory reached) since 2026-12-01T00:00:00Z (failing closed)")
	code, body = get()
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "store: limiter refused by an out-of-memory Redis")
}

func TestLedgerTTL(t *testing.T) {
	parse := func(extra string) *config.Config {
		t.Helper()
		c, err := config.Parse([]byte(extra+"robots:\n  - {name: a, platform: popo, webhook: 'https://h/open-apis/robots/v1/hook/x'}\n"),
			func(string) (string, bool) { return "", false })
		require.NoError(t, err)
		return c
	}
	require.Equal(t, ledger.DefaultTTL, ledgerTTL(parse("")), "defaults: 3 × the 10m cool-off is the default TTL")
	require.Equal(t, 3*time.Hour, ledgerTTL(parse("platforms:\n  popo:\n    cool_off: 1h\n")), "a longer cool-off keeps entries longer")
	require.Equal(t, 45*time.Minute, ledgerTTL(parse("retry:\n  max_interval: 15m\n")))
}
