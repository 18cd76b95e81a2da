package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/gateway"
	"github.com/botrelay/botrelay/pkg/publisher"
)

// fuzzGateway is a gateway on a real (embedded) NATS for the fuzz targets,
// purging its stream now and then so that long runs never fill it.
type fuzzGateway struct {
	g     http.Handler
	purge func()
	n     atomic.Int64
}

func newFuzzGateway(f *testing.F) *fuzzGateway {
	f.Helper()
	_, js := testenv.Connect(f, testenv.NATSURL(f))
	topo := testenv.Topology(f, js)
	require.NoError(f, topo.Ensure(context.Background(), js))
	pub, err := publisher.New(js, topo)
	require.NoError(f, err)
	g, err := gateway.New(pub, gateway.Options{NoAuth: true, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	require.NoError(f, err)
	return &fuzzGateway{g: g, purge: func() {
		if s, err := js.Stream(context.Background(), topo.OutStream()); err == nil {
			_ = s.Purge(context.Background())
		}
	}}
}

// serve posts body to path and checks what holds for every answer: a
// documented status, a bounded JSON body of the documented shape, and a
// 202 only with every item stored.
func (fg *fuzzGateway) serve(t *testing.T, path string, body []byte, idemKey string) {
	if fg.n.Add(1)%1000 == 0 {
		fg.purge()
	}
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	rec := httptest.NewRecorder()
	fg.g.ServeHTTP(rec, req)
	res := rec.Result()
	out := rec.Body.Bytes()
	switch res.StatusCode {
	case http.StatusAccepted, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
	default:
		t.Fatalf("status %d for %q: %s", res.StatusCode, body, out)
	}
	if len(out) > 64<<10 {
		t.Fatalf("answer of %d bytes", len(out))
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if res.StatusCode != http.StatusAccepted {
		var e struct {
			Error    string   `json:"error"`
			Problems []string `json:"problems"`
		}
		if err := dec.Decode(&e); err != nil || e.Error == "" || len(e.Problems) > gateway.MaxProblems {
			t.Fatalf("error answer %q: %v", out, err)
		}
		for _, p := range e.Problems {
			if len(p) > 256 {
				t.Fatalf("problem of %d bytes", len(p))
			}
		}
		return
	}
	if path == "/v1/messages" && !strings.Contains(string(out), `"results"`) {
		var r gateway.Result
		if err := dec.Decode(&r); err != nil || r.ID == "" || r.Sequence == 0 {
			t.Fatalf("202 answer %q: %v", out, err)
		}
		return
	}
	var m gateway.MultiResponse
	if err := dec.Decode(&m); err != nil || m.Failed != 0 || m.Stored == 0 || len(m.Results)+m.Omitted != m.Stored {
		t.Fatalf("202 answer %q: %v", out, err)
	}
}

func FuzzPostMessage(f *testing.F) {
	for _, seed := range []string{
		`{"robot":"ops","text":"disk full"}`,
		`{"robot":"ops","markdown":{"title":"Deploy","text":"## done @138"},"at":{"mobiles":["138"]},"ttl":"10m","labels":{"team":"db"}}`,
		`{"v":1,"id":"b-1","robot":"dev","message":{"link":{"title":"t","text":"x","messageUrl":"https://e.com"}},"created_at":"2025-01-01T00:00:00Z"}`,
		`{"robot":"ops","text":"` + strings.Repeat("line\n", 5000) + `","split":true}`,
		`{"robot":"ops","text":"x","labels":{"k":"` + strings.Repeat("v", 1100) + `"}}`,
		`{"robot":"a.b","text":1}`, `{"robot":`, `[]`, `{"robot":"ops","text":"x"} {}`, ``,
	} {
		f.Add([]byte(seed), "")
	}
	f.Add([]byte(`{"robot":"ops","text":"retry"}`), "key-1")
	fg := newFuzzGateway(f)
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		fg.serve(t, "/v1/messages", body, key)
	})
}

func FuzzPostFanOut(f *testing.F) {
	for _, seed := range []string{
		`{"robots":["ops","dev"],"text":"hi"}`,
		`{"robots":["ops","ops"],"text":"hi"}`,
		`{"robots":[],"text":"hi"}`,
		`{"robots":["ops","dev"],"markdown":{"title":"Log","text":"` + strings.Repeat("x\n", 12000) + `"},"split":true}`,
		`{"robot":"ops","robots":"ops"}`,
	} {
		f.Add([]byte(seed), "fan-1")
	}
	fg := newFuzzGateway(f)
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		fg.serve(t, "/v1/fanout", body, key)
	})
}

func FuzzPostBatch(f *testing.F) {
	for _, seed := range []string{
		`{"robot":"ops","id":"n-1","text":"one"}` + "\n\n" + `{"robot":"dev","id":"n-2","markdown":{"title":"t","text":"two"}}`,
		`{"robot":"ops","text":"fine"}` + "\n" + `{"text":"x"}`,
		`{"robot":"ops","text":"x","split":true}`,
		strings.Repeat(`{"robot":"ops","text":"x"}`+"\n", 300),
		"\n\n", `{"robot":` + "\n",
	} {
		f.Add([]byte(seed))
	}
	fg := newFuzzGateway(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fg.serve(t, "/v1/messages:batch", body, "")
	})
}
