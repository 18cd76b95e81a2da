package gateway

import (
	"context"
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
	"sync/atomic"
	"time"

	"github.com/botrelay/botrelay/pkg/alertmanager"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
)

// Defaults and limits of a [Gateway].
const (
	// DefaultMaxBodyBytes is the largest request body accepted when
	// [Options.MaxBodyBytes] is 0.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxAlertmanagerBodyBytes is the largest Alertmanager
	// notification accepted when [Options.MaxAlertmanagerBodyBytes] is 0:
	// about 20,000 alerts. Alertmanager sends a group's every alert in one
	// notification (max_alerts 0) and never retries a 413, so a storm's
	// must not be refused for its size.
	DefaultMaxAlertmanagerBodyBytes = 16 << 20
	// MaxFanOut is the most robots one POST /v1/fanout may name.
	MaxFanOut = 100
	// MaxBatch is the most messages one POST /v1/messages:batch may hold.
	MaxBatch = 1000
	// MaxSplitParts is the most parts a "split": true message may become.
	MaxSplitParts = 20
	// MaxMessagesPerRequest bounds the messages one request stores: a
	// fan-out's robots times its split parts, a batch's lines.
	MaxMessagesPerRequest = MaxBatch
	// MaxFanOutSplit bounds a split fan-out's robots × parts.
	MaxFanOutSplit = 200
	// MaxEnvelopeBytes bounds the encoding of every stored envelope,
	// labels included, so that its dead letter (the envelope and a few
	// hundred bytes) always fits a NATS message (1 MiB by default).
	MaxEnvelopeBytes = 64 << 10
	// MaxProblems is the most problems an error answer lists; more are
	// summarised in a last line.
	MaxProblems = 100
	// MaxResults is the most per-item results a [MultiResponse] lists;
	// beyond, only the failed items are listed (up to MaxResults) and
	// [MultiResponse.Omitted] counts the others.
	MaxResults = 200
	// RetryAfter is the Retry-After of a 502 or 503: the message (or some
	// copies) could not be stored because NATS did not acknowledge them.
	RetryAfter = 5 * time.Second
)

// ErrInvalidOption is returned by [New] for an option with a bad value.
var ErrInvalidOption = errors.New("gateway: invalid option")

// Options configure a [Gateway]. Some authentication must be chosen:
// [Options.Tokens], [Options.Access], or [Options.NoAuth] explicitly.
type Options struct {
	// Logger receives one line per request (id, robot, token name,
	// outcome; never the body or a token); nil means slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes bounds a request body; a larger one is refused with 413.
	// 0 means [DefaultMaxBodyBytes].
	MaxBodyBytes int64
	// MaxAlertmanagerBodyBytes bounds the body of POST
	// /v1/alertmanager/{target}; 0 means the larger of
	// [DefaultMaxAlertmanagerBodyBytes] and MaxBodyBytes.
	MaxAlertmanagerBodyBytes int64
	// Tokens are bearer tokens accepted on /v1/ endpoints for every robot
	// and without a rate, named "token-1", "token-2", … in logs.
	Tokens []string
	// Access are the named tokens with scopes, rates and quotas (see
	// [Token] and [ParseTokens]); [Gateway.SetTokens] replaces them while
	// serving.
	Access []Token
	// NoAuth, with neither Tokens nor Access, accepts every request
	// without authentication: only for a gateway reachable from trusted
	// networks alone. Without it, [New] refuses a gateway with no token.
	NoAuth bool
	// Limiter enforces the Access tokens' rates and quotas; required when
	// one of them has a Rate or MaxMessagesPerMinute.
	Limiter *Limiter
	// Metrics, when not nil, count requests and stored messages per token
	// name (see [NewMetrics]).
	Metrics *Metrics
	// Robots, when not empty, is the allow-list of robot and pool names
	// (config's Targets): a message for any other robot is refused with
	// 422 at once instead of being dead-lettered by the worker later.
	// Groups (publisher.WithGroups) are accepted besides, their members
	// checked against it.
	Robots []string
	// Size returns the size rules of a robot's platform (config's Size);
	// nil means DingTalk's for every robot. A message that does not fit
	// its robot's platform is refused (422), or split by its rules.
	Size func(robot string) envelope.Limits
	// Ready reports whether the gateway can publish (typically the NATS
	// connection's IsConnected) and backs GET /readyz; nil means always.
	Ready func() bool
	// Apps are the enterprise robots whose callbacks are taken on
	// POST /v1/callbacks/dingtalk/{app}; Inbound stores them (required
	// with Apps).
	Apps    []App
	Inbound InboundPublisher
	// Events looks up the inbound events replies name; POST /v1/replies
	// answers 404 without it.
	Events EventLookup
	// Now is the gateway's clock: created_at for messages without one,
	// and the rates' and quotas' time; nil means time.Now.
	Now func() time.Time
	// Alerts renders the Alertmanager notifications of
	// POST /v1/alertmanager/{target}; nil means alertmanager's default
	// template.
	Alerts *alertmanager.Renderer
	// Keywords returns a robot's (or pool's) security keywords: a
	// notification for it is rendered with the first one as the
	// template's .Keyword. [New] checks that Alerts carries them for
	// each of [Options.Robots]. nil means none.
	Keywords func(target string) []string
}

// Gateway is the HTTP front of a [publisher.Publisher]; it is an
// [http.Handler], safe for concurrent use. See the package documentation
// for its endpoints.
type Gateway struct {
	pub     *publisher.Publisher
	log     *slog.Logger
	maxBody int64
	maxAM   int64   // Options.MaxAlertmanagerBodyBytes
	plain   []Token // from Options.Tokens
	access  atomic.Pointer[[]Token]
	noAuth  bool
	limiter *Limiter
	metrics *Metrics
	robots  []string
	size    func(robot string) envelope.Limits
	ready   func() bool
	now     func() time.Time
	apps    map[string]string // name -> secret
	inbound InboundPublisher
	events  EventLookup
	mux     *http.ServeMux

	alerts, defaultAlerts *alertmanager.Renderer
	keywords              func(target string) []string
}

// New returns a gateway publishing with pub. It fails, matching
// [ErrInvalidOption], for a nil publisher, a negative MaxBodyBytes, an
// empty token, no token without NoAuth, invalid Access tokens (see
// [ErrInvalidTokens]), limited tokens without a Limiter, or a robot name
// that no envelope could carry.
func New(pub *publisher.Publisher, opts Options) (*Gateway, error) {
	if pub == nil {
		return nil, fmt.Errorf("%w: nil publisher", ErrInvalidOption)
	}
	g := &Gateway{
		pub:     pub,
		log:     opts.Logger,
		maxBody: opts.MaxBodyBytes,
		maxAM:   opts.MaxAlertmanagerBodyBytes,
		noAuth:  opts.NoAuth,
		limiter: opts.Limiter,
		metrics: opts.Metrics,
		robots:  slices.Clone(opts.Robots),
		size:    opts.Size,
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
	switch {
	case g.maxAM < 0:
		return nil, fmt.Errorf("%w: MaxAlertmanagerBodyBytes must not be negative, not %d", ErrInvalidOption, g.maxAM)
	case g.maxAM == 0:
		g.maxAM = max(DefaultMaxAlertmanagerBodyBytes, g.maxBody)
	}
	if g.now == nil {
		g.now = time.Now
	}
	for i, t := range opts.Tokens {
		if strings.TrimSpace(t) == "" {
			return nil, fmt.Errorf("%w: Tokens[%d] is empty", ErrInvalidOption, i)
		}
		g.plain = append(g.plain, Token{Name: "token-" + strconv.Itoa(i+1), SHA256: sha256.Sum256([]byte(strings.TrimSpace(t)))})
	}
	if len(opts.Tokens) == 0 && len(opts.Access) == 0 && !opts.NoAuth {
		return nil, fmt.Errorf("%w: no token: set Tokens or Access, or NoAuth to accept every request", ErrInvalidOption)
	}
	if (len(opts.Tokens) > 0 || len(opts.Access) > 0) && opts.NoAuth {
		return nil, fmt.Errorf("%w: NoAuth with tokens: choose one", ErrInvalidOption)
	}
	if err := g.SetTokens(opts.Access); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
	}
	for i, r := range g.robots {
		if p := robotProblem(r, nil); p != "" {
			return nil, fmt.Errorf("%w: Robots[%d] %q: %s", ErrInvalidOption, i, r, p)
		}
	}

	g.apps, g.inbound, g.events = map[string]string{}, opts.Inbound, opts.Events
	for i, a := range opts.Apps {
		switch _, dup := g.apps[a.Name]; {
		case a.Name == "" || robotProblem(a.Name, nil) != "":
			return nil, fmt.Errorf("%w: Apps[%d]: invalid name", ErrInvalidOption, i)
		case dup:
			return nil, fmt.Errorf("%w: Apps[%d] %q: duplicate", ErrInvalidOption, i, a.Name)
		case a.Secret == "":
			return nil, fmt.Errorf("%w: Apps[%d] %q: empty secret", ErrInvalidOption, i, a.Name)
		}
		g.apps[a.Name] = a.Secret
	}
	if len(g.apps) > 0 && g.inbound == nil {
		return nil, fmt.Errorf("%w: Apps without Inbound", ErrInvalidOption)
	}
	def, err := alertmanager.New("")
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err) // the default template: cannot happen
	}
	g.alerts, g.defaultAlerts, g.keywords = opts.Alerts, def, opts.Keywords
	if g.alerts == nil {
		g.alerts = def
	}
	if err := checkAlertTemplate(g.alerts, g.robots, g.keywords); err != nil {
		return nil, fmt.Errorf("%w: Alerts: %w", ErrInvalidOption, err)
	}

	g.mux = http.NewServeMux()
	g.mux.HandleFunc("POST /v1/callbacks/dingtalk/{app}", g.postCallback)
	g.mux.HandleFunc("GET /healthz", g.healthz)
	g.mux.HandleFunc("GET /readyz", g.readyz)
	g.mux.HandleFunc("GET /openapi.json", g.openAPI)
	g.mux.Handle("POST /v1/messages", g.auth(g.postMessage))
	g.mux.Handle("POST /v1/messages:batch", g.auth(g.postBatch))
	g.mux.Handle("POST /v1/fanout", g.auth(g.postFanOut))
	g.mux.Handle("POST /v1/replies", g.auth(g.postReply))
	g.mux.Handle("POST /v1/alertmanager/{target}", retryable(g.auth(g.postAlertmanager)))
	return g, nil
}

// SetTokens replaces the [Options.Access] tokens (a reloaded tokens file);
// requests already authenticated keep the token they had. It fails,
// matching [ErrInvalidTokens], for invalid tokens (names and hashes must
// be unique, [Options.Tokens] included), and, matching [ErrInvalidOption],
// for a limited token without a [Limiter]; the tokens in use are kept then.
func (g *Gateway) SetTokens(tokens []Token) error {
	all := append(slices.Clone(g.plain), tokens...)
	if err := validateTokens(all); err != nil {
		return err
	}
	for _, t := range tokens {
		if t.limited() && g.limiter == nil {
			return fmt.Errorf("%w: token %q has a rate or quota but the gateway has no Limiter", ErrInvalidOption, t.Name)
		}
	}
	if len(all) == 0 && !g.noAuth {
		return fmt.Errorf("%w: no token", ErrInvalidTokens)
	}
	all = slices.Clip(all)
	for i := range all {
		all[i].Robots = slices.Clone(all[i].Robots)
	}
	g.access.Store(&all)
	return nil
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

// tokenKey is the context key of the request's authenticated [Token].
type tokenKey struct{}

// tokenOf returns the request's token, nil without authentication.
func tokenOf(r *http.Request) *Token {
	t, _ := r.Context().Value(tokenKey{}).(*Token)
	return t
}

// tokenName is the name logged for the request's token ("" for none).
func tokenName(r *http.Request) string {
	if t := tokenOf(r); t != nil {
		return t.Name
	}
	return ""
}

// auth wraps h with the bearer-token check and the token's rate, when
// tokens are configured. Every token's hash is compared, in constant time,
// with the hash of the one presented, so neither a token's content nor its
// length leaks by timing.
func (g *Gateway) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := &statusWriter{ResponseWriter: rw}
		var tok *Token
		defer func() {
			name := ""
			if tok != nil {
				name = tok.Name
			}
			g.metrics.observe(name, endpointOf(r), w.status)
		}()
		tokens := *g.access.Load()
		if len(tokens) == 0 && g.noAuth {
			h(w, r)
			return
		}
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="botrelay"`)
			g.fail(w, r, &requestError{status: http.StatusUnauthorized, msg: "authentication required: send Authorization: Bearer <token>"})
			return
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		found := -1
		for i := range tokens {
			eq := subtle.ConstantTimeCompare(sum[:], tokens[i].SHA256[:])
			found = subtle.ConstantTimeSelect(eq, i, found)
		}
		if found < 0 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="botrelay", error="invalid_token"`)
			g.fail(w, r, &requestError{status: http.StatusUnauthorized, msg: "invalid bearer token"})
			return
		}
		tok = &tokens[found]
		r = r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok))
		if tok.Rate > 0 {
			wait, err := g.limiter.allowRequest(r.Context(), tok, g.now())
			if err != nil {
				g.limiterFailed(w, r, err)
				return
			}
			if wait > 0 {
				g.tooMany(w, r, wait, fmt.Sprintf("token %s: over its rate of %g requests per second", tok.Name, tok.Rate))
				return
			}
		}
		h(w, r)
	})
}

// endpointOf is the endpoint label of r: its path, with a path
// parameter's value replaced by its name (bounded label values).
func endpointOf(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/v1/alertmanager/") {
		return "/v1/alertmanager/{target}"
	}
	return r.URL.Path
}

// reserve takes n messages of the request's token's quota. It answers the
// request (413, 429 or 503) and returns false when they may not be stored.
func (g *Gateway) reserve(w http.ResponseWriter, r *http.Request, n int) bool {
	tok := tokenOf(r)
	if tok == nil || tok.MaxMessagesPerMinute <= 0 {
		return true
	}
	wait, err := g.limiter.allowMessages(r.Context(), tok, n, g.now())
	switch {
	case errors.Is(err, errQuotaTooSmall):
		g.fail(w, r, &requestError{status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("request holds %d messages, more than token %s may store in a minute (%d)", n, tok.Name, tok.MaxMessagesPerMinute)})
		return false
	case err != nil:
		g.limiterFailed(w, r, err)
		return false
	case wait > 0:
		g.tooMany(w, r, wait, fmt.Sprintf("token %s: over its quota of %d messages per minute", tok.Name, tok.MaxMessagesPerMinute))
		return false
	}
	return true
}

// refund gives back to the request's token's quota n messages reserved
// but not stored (not acknowledged, or duplicates of stored ones), so that
// a client retrying after a 502 or 503 is not charged twice.
func (g *Gateway) refund(r *http.Request, n int) {
	tok := tokenOf(r)
	if tok == nil || tok.MaxMessagesPerMinute <= 0 || n <= 0 {
		return
	}
	if _, err := g.limiter.allowMessages(context.WithoutCancel(r.Context()), tok, -n, g.now()); err != nil {
		g.log.Warn("quota refund failed", "token", tok.Name, "messages", n, "err", err)
	}
}

// tooMany answers 429 (503 where the caller retries only 5xx, see
// retryable) with Retry-After (whole seconds, rounded up).
func (g *Gateway) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	g.fail(w, r, &requestError{status: throttleStatus(r), msg: msg + ": retry later"})
}

// limiterFailed answers 503: without Redis no rate can be checked, and the
// gateway fails closed.
func (g *Gateway) limiterFailed(w http.ResponseWriter, r *http.Request, err error) {
	g.log.Warn("rate limiter unavailable", "token", tokenName(r), "err", err)
	unavailable(w, http.StatusServiceUnavailable, errorBody{Error: "rate limiter unavailable, retry later"})
}

// errorBody is the JSON of every refusal.
type errorBody struct {
	Error    string   `json:"error"`
	Problems []string `json:"problems,omitempty"`
}

// fail answers with err's status and JSON body, and logs the refusal
// without the body.
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, err *requestError) {
	g.log.Info("request refused", "method", r.Method, "path", r.URL.Path, "token", tokenName(r), "status", err.status,
		"error", clip(err.msg), "problems", len(err.problems))
	writeJSON(w, err.status, errorBody{Error: clip(err.msg), Problems: capProblems(err.problems)})
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
