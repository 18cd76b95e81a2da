package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/botrelay/botrelay/pkg/publisher"
)

// Defaults and limits of a [Gateway].
const (
	// DefaultMaxBodyBytes is the largest request body accepted when
	// [Options.MaxBodyBytes] is 0.
	DefaultMaxBodyBytes = 1 << 20
	// MaxFanOut is the most robots one POST /v1/fanout may name.
	MaxFanOut = 100
	// MaxBatch is the most messages one POST /v1/messages:batch may hold.
	MaxBatch = 1000
	// RetryAfter is the Retry-After of a 502 or 503: the message (or some
	// copies) could not be stored because NATS did not acknowledge them.
	RetryAfter = 5 * time.Second
)

// ErrInvalidOption is returned by [New] for an option with a bad value.
var ErrInvalidOption = errors.New("gateway: invalid option")

// Options configure a [Gateway]. The zero value is valid: no
// authentication, any robot, 1 MiB bodies, always ready.
type Options struct {
	// Logger receives one line per request (id, robot, outcome; never the
	// body); nil means slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes bounds a request body; a larger one is refused with 413.
	// 0 means [DefaultMaxBodyBytes].
	MaxBodyBytes int64
	// Tokens are the bearer tokens accepted on /v1/ endpoints. Empty means
	// no authentication: only for a gateway reachable from trusted
	// networks alone.
	Tokens []string
	// Robots, when not empty, is the allow-list of robot names: a message
	// for any other robot is refused with 422 at once instead of being
	// dead-lettered by the worker later.
	Robots []string
	// Ready reports whether the gateway can publish (typically the NATS
	// connection's IsConnected) and backs GET /readyz; nil means always.
	Ready func() bool
	// Now gives created_at for messages without one; nil means time.Now.
	Now func() time.Time
}

// Gateway is the HTTP front of a [publisher.Publisher]; it is an
// [http.Handler], safe for concurrent use. See the package documentation
// for its endpoints.
type Gateway struct {
	pub     *publisher.Publisher
	log     *slog.Logger
	maxBody int64
	tokens  [][sha256.Size]byte
	robots  []string
	ready   func() bool
	now     func() time.Time
	mux     *http.ServeMux
}

// New returns a gateway publishing with pub. It fails, matching
// [ErrInvalidOption], for a nil publisher, a negative MaxBodyBytes, an
// empty token, or a robot name that no envelope could carry.
func New(pub *publisher.Publisher, opts Options) (*Gateway, error) {
	if pub == nil {
		return nil, fmt.Errorf("%w: nil publisher", ErrInvalidOption)
	}
	g := &Gateway{
		pub:     pub,
		log:     opts.Logger,
		maxBody: opts.MaxBodyBytes,
		robots:  slices.Clone(opts.Robots),
		ready:   opts.Ready,
		now:     opts.Now,
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	switch {
	case g.maxBody < 0:
		return nil, fmt.Errorf("%w: MaxBodyBytes must not be negative, not %d", ErrInvalidOption, g.maxBody)
	case g.maxBody == 0:
		g.maxBody = DefaultMaxBodyBytes
	}
	if g.now == nil {
		g.now = time.Now
	}
	for i, t := range opts.Tokens {
		if strings.TrimSpace(t) == "" {
			return nil, fmt.Errorf("%w: Tokens[%d] is empty", ErrInvalidOption, i)
		}
		g.tokens = append(g.tokens, sha256.Sum256([]byte(t)))
	}
	for i, r := range g.robots {
		if p := robotProblem(r, nil); p != "" {
			return nil, fmt.Errorf("%w: Robots[%d] %q: %s", ErrInvalidOption, i, r, p)
		}
	}

	g.mux = http.NewServeMux()
	g.mux.HandleFunc("GET /healthz", g.healthz)
	g.mux.HandleFunc("GET /readyz", g.readyz)
	g.mux.Handle("POST /v1/messages", g.auth(g.postMessage))
	g.mux.Handle("POST /v1/messages:batch", g.auth(g.postBatch))
	g.mux.Handle("POST /v1/fanout", g.auth(g.postFanOut))
	return g, nil
}

// ServeHTTP serves the gateway's endpoints.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mux.ServeHTTP(w, r)
}

func (g *Gateway) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

func (g *Gateway) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if g.ready != nil && !g.ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "nats: not connected\n")
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

// auth wraps h with the bearer-token check, when tokens are configured.
// Every token is compared, in constant time, with the hash of the one
// presented, so neither a token's content nor its length leaks by timing.
func (g *Gateway) auth(h http.HandlerFunc) http.Handler {
	if len(g.tokens) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="botrelay"`)
			g.fail(w, r, &requestError{status: http.StatusUnauthorized, msg: "authentication required: send Authorization: Bearer <token>"})
			return
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		match := 0
		for i := range g.tokens {
			match |= subtle.ConstantTimeCompare(sum[:], g.tokens[i][:])
		}
		if match != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="botrelay", error="invalid_token"`)
			g.fail(w, r, &requestError{status: http.StatusUnauthorized, msg: "invalid bearer token"})
			return
		}
		h(w, r)
	})
}

// errorBody is the JSON of every refusal.
type errorBody struct {
	Error    string   `json:"error"`
	Problems []string `json:"problems,omitempty"`
}

// fail answers with err's status and JSON body, and logs the refusal
// without the body.
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, err *requestError) {
	g.log.Info("request refused", "method", r.Method, "path", r.URL.Path, "status", err.status,
		"error", err.msg, "problems", len(err.problems))
	writeJSON(w, err.status, errorBody{Error: err.msg, Problems: err.problems})
}

// unavailable sets Retry-After and answers with status and v.
func unavailable(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfter/time.Second)))
	writeJSON(w, status, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only plain structs are written: cannot happen
		b = []byte(`{"error":"internal error"}`)
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
