package robotsim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// ErrInvalidRobot is returned by [Sim.AddRobot] for a robot without a token
// or with an unknown platform.
var ErrInvalidRobot = errors.New("robotsim: invalid robot")

// Robot is one simulated custom robot.
type Robot struct {
	// Platform is [PlatformDingTalk] or [PlatformPOPO].
	Platform string
	// Token is the DingTalk access_token or the POPO hook id.
	Token string
	// Secret is the signing secret; "" means no signature check.
	Secret string
	// Keywords, when set, must appear (one at least, exact substring) in
	// the content.
	Keywords []string
	// Limit is the per-window message limit; 0 means the platform default
	// ([DefaultDingTalkLimit], [DefaultPOPOLimit], [DefaultFeishuLimit],
	// [DefaultWeComLimit]).
	Limit int
	// BurstLimit is Feishu's per-second limit (per [Config.BurstWindow]);
	// 0 means [DefaultFeishuBurst]. Other platforms have none.
	BurstLimit int
	// Window is the robot's rolling window; 0 means [Config.Window].
	Window time.Duration
}

// Config configures a [Sim]. Zero values mean the defaults.
type Config struct {
	// Window is the rolling rate window; 0 means one minute.
	Window time.Duration
	// Ban is how long a DingTalk or POPO robot stays throttled after a
	// breach; 0 means ten minutes.
	Ban time.Duration
	// BurstWindow is Feishu's short window (one second, scaled like
	// Window); 0 means Window/60.
	BurstWindow time.Duration
	// FeishuBan and WeComBan are how long a Feishu or WeCom robot stays
	// throttled after a breach. Neither platform documents a ban: 0 means
	// none, only the requests over the limit are refused.
	FeishuBan time.Duration
	WeComBan  time.Duration
	// Now is the clock for windows, bans and Received.At; nil means
	// time.Now. Signature timestamps are always checked against the real
	// time.Now with [MaxSkew], by the simulator's own code.
	Now func() time.Time
	// Logger receives one debug line per refused request; nil means
	// slog.Default(). Tokens are redacted, secrets never logged.
	Logger *slog.Logger
	// CountOnly keeps counters only ([Sim.Stats], [Sim.Robots],
	// [Sim.Totals]): no message ([Sim.Received]) and no request log
	// ([Sim.Requests]) is kept, so that a benchmark's simulator holds tens
	// of thousands of robots and millions of messages cheaply. Duplicates
	// are still found: DingTalk's by msgUuid, every platform's by content
	// ([Stats.RepeatedContent]).
	CountOnly bool
}

// Received is one message a robot accepted.
type Received struct {
	// At is when it arrived, by [Config.Now].
	At time.Time `json:"at"`
	// MsgType is the DingTalk msgtype; "text" for POPO.
	MsgType string `json:"msgType"`
	// Content is the main text: text.content, markdown/link/actionCard
	// text, feedCard titles joined by "\n", or the POPO message.
	Content string `json:"content"`
	// Title is the markdown, link or actionCard title.
	Title string `json:"title,omitempty"`
	// MsgUUID is DingTalk's msgUuid, when sent.
	MsgUUID string `json:"msgUuid,omitempty"`
	// Body is the raw request body (base64 in the JSON of the /_sim endpoints).
	Body []byte `json:"body"`
	// AtMobiles, AtUserIDs and AtAll are DingTalk's mentions.
	AtMobiles []string `json:"atMobiles,omitempty"`
	AtUserIDs []string `json:"atUserIds,omitempty"`
	AtAll     bool     `json:"atAll,omitempty"`
	// MessageID is the msgId returned to a POPO sender.
	MessageID string `json:"messageId,omitempty"`
	// Repeats counts the later DingTalk requests with the same msgUuid,
	// answered ok and dropped as duplicates (also counted in
	// Stats.Duplicates). A message posted once has 0.
	Repeats int `json:"repeats"`
}

// What became of a [Request].
const (
	RequestAccepted  = "accepted"  // recorded in [Sim.Received]
	RequestDuplicate = "duplicate" // a DingTalk msgUuid already accepted: answered ok, not recorded again
	RequestRefused   = "refused"   // answered with a nonzero errcode
	RequestFaulted   = "faulted"   // answered by an injected [Fault]
)

// Request is one request addressed to a robot, as [Sim.Requests] lists
// them: every one the robot's token or hook id received, whatever became
// of it.
type Request struct {
	// At is when it arrived, by [Config.Now].
	At time.Time `json:"at"`
	// Outcome is [RequestAccepted], [RequestDuplicate], [RequestRefused]
	// or [RequestFaulted].
	Outcome string `json:"outcome"`
	// ErrCode is the errcode answered (0 for accepted and duplicate
	// requests and for faults).
	ErrCode int `json:"errcode"`
	// MsgUUID is DingTalk's msgUuid, when the body had one.
	MsgUUID string `json:"msgUuid,omitempty"`
	// Content is the message's main text as in [Received], when the body
	// could be read as a message ("" for faulted requests, whose body is
	// not read).
	Content string `json:"content,omitempty"`
}

// Stats counts a robot's requests. Requests = Accepted + Duplicates +
// Rejected + Faulted.
type Stats struct {
	// Requests is every request addressed to the robot.
	Requests int `json:"requests"`
	// Accepted is the messages recorded (see [Sim.Received]).
	Accepted int `json:"accepted"`
	// Rejected is the requests answered with a nonzero errcode.
	Rejected int `json:"rejected"`
	// Breaches is the requests that exceeded the limit and started a ban.
	Breaches int `json:"breaches"`
	// DuringBan is the requests that arrived while the robot was banned.
	DuringBan int `json:"duringBan"`
	// Duplicates is the DingTalk requests whose msgUuid was already
	// accepted: answered ok, not recorded twice.
	Duplicates int `json:"duplicates"`
	// SignatureFailures is the requests refused for timestamp or sign.
	SignatureFailures int `json:"signatureFailures"`
	// Faulted is the requests answered by an injected [Fault].
	Faulted int `json:"faulted"`
	// RepeatedContent is the accepted messages whose content (msgtype,
	// title and text) the robot had already accepted: on platforms
	// without msgUuid, a message posted twice. A sender posting the same
	// text on purpose counts here too: benchmarks give every message its
	// own text.
	RepeatedContent int `json:"repeatedContent"`
}

// Fault is an injected failure; see [Sim.InjectFault].
type Fault struct {
	// Status is the HTTP status to answer with (e.g. 500, 503, 429); 0
	// with Body set means 200.
	Status int
	// Body is the raw response body, e.g. `{"errcode":-1,"errmsg":"system
	// busy"}`; "" means a short text body.
	Body string
	// Count is how many consecutive requests the fault applies to; 0 means 1.
	Count int
	// Delay is waited (real time) before answering. A fault with only a
	// Delay slows the request down, which is then processed normally.
	Delay time.Duration
	// Drop hijacks the connection and closes it without answering.
	Drop bool
}

// Sim simulates custom robots; it is an [http.Handler]. Create it with [New].
type Sim struct {
	cfg    Config
	mux    *http.ServeMux
	log    *slog.Logger
	mu     sync.Mutex
	robots map[string]*robotState
	faults map[string][]Fault
	nextID int64
}

// simWindow is one rolling window of a robot.
type simWindow struct {
	limit int
	span  time.Duration
	log   []time.Time // attempts inside the window, oldest first
}

type robotState struct {
	robot       Robot
	limit       int
	windows     []simWindow // the rolling windows, the platform's minute first
	ban         time.Duration
	bannedUntil time.Time
	uuids       map[string]int // msgUuid → index in received
	received    []Received
	requests    []Request
	stats       Stats
	countOnly   bool                // Config.CountOnly: keep no received or requests
	contents    map[uint64]struct{} // hashes of the accepted contents
	first, last time.Time           // the first and last acceptance
}

// New returns a Sim with no robots.
func New(cfg Config) *Sim {
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.Ban <= 0 {
		cfg.Ban = 10 * time.Minute
	}
	if cfg.BurstWindow <= 0 {
		cfg.BurstWindow = cfg.Window / 60
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sim{
		cfg:    cfg,
		log:    cfg.Logger,
		robots: map[string]*robotState{},
		faults: map[string][]Fault{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/robot/send", s.serveDingTalk)
	s.mux.HandleFunc(sessionPath, s.serveDingTalk)
	s.mux.HandleFunc("/open-apis/robots/v1/hook/{id}", s.servePOPO)
	s.mux.HandleFunc("/open-apis/bot/v2/hook/{token}", s.serveFeishu)
	s.mux.HandleFunc("/cgi-bin/webhook/send", s.serveWeCom)
	s.mux.HandleFunc("GET /_sim/robots", s.serveRobots)
	s.mux.HandleFunc("GET /_sim/stats", s.serveStats)
	s.mux.HandleFunc("GET /_sim/robots/{token}/received", s.serveReceived)
	s.mux.HandleFunc("GET /_sim/robots/{token}/requests", s.serveRequests)
	return s
}

// AddRobot registers r, replacing (and resetting) any robot with the same
// token. It fails with [ErrInvalidRobot] for an empty token or an unknown
// platform.
func (s *Sim) AddRobot(r Robot) error {
	if r.Token == "" {
		return fmt.Errorf("%w: empty token", ErrInvalidRobot)
	}
	limit, ban := r.Limit, s.cfg.Ban
	var burst *simWindow
	switch r.Platform {
	case PlatformDingTalk:
		if limit <= 0 {
			limit = DefaultDingTalkLimit
		}
	case PlatformPOPO:
		if limit <= 0 {
			limit = DefaultPOPOLimit
		}
	case PlatformFeishu:
		if limit <= 0 {
			limit = DefaultFeishuLimit
		}
		burst = &simWindow{limit: r.BurstLimit, span: s.cfg.BurstWindow}
		if burst.limit <= 0 {
			burst.limit = DefaultFeishuBurst
		}
		ban = s.cfg.FeishuBan
	case PlatformWeCom:
		if limit <= 0 {
			limit = DefaultWeComLimit
		}
		ban = s.cfg.WeComBan
	default:
		return fmt.Errorf("%w: unknown platform %q", ErrInvalidRobot, r.Platform)
	}
	r.Keywords = slices.Clone(r.Keywords)
	span := r.Window
	if span <= 0 {
		span = s.cfg.Window
	}
	st := &robotState{robot: r, limit: limit, ban: ban, uuids: map[string]int{},
		windows: []simWindow{{limit: limit, span: span}}, countOnly: s.cfg.CountOnly}
	if burst != nil {
		st.windows = append(st.windows, *burst)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.robots[r.Token] = st
	return nil
}

// ServeHTTP answers a robot request like the platform would, or a
// /_sim/ inspection request.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Received returns a copy of the messages the robot accepted, each once,
// in the order of their first acceptance (a repeat, see
// [Received.Repeats], does not move a message); nil for an unknown token.
func (s *Sim) Received(token string) []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.robots[token]
	if st == nil {
		return nil
	}
	out := make([]Received, len(st.received))
	for i, m := range st.received {
		out[i] = m.clone()
	}
	return out
}

func (m Received) clone() Received {
	m.Body = slices.Clone(m.Body)
	m.AtMobiles = slices.Clone(m.AtMobiles)
	m.AtUserIDs = slices.Clone(m.AtUserIDs)
	return m
}

// Requests returns a copy of every request the robot received, in arrival
// order, accepted or not: with [Sim.Received] a test can check the exact
// multiset and order of what a sender posted, repeats included. Nil for an
// unknown token.
func (s *Sim) Requests(token string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.robots[token]
	if st == nil {
		return nil
	}
	return slices.Clone(st.requests)
}

// record appends a request to st's log, unless the Sim only counts. s.mu
// held.
func (st *robotState) record(r Request) {
	if !st.countOnly {
		st.requests = append(st.requests, r)
	}
}

// accept counts rec as accepted at rec.At and keeps it, unless the Sim
// only counts. A content already accepted is counted in
// Stats.RepeatedContent. s.mu held.
func (st *robotState) accept(rec Received) {
	st.stats.Accepted++
	h := fnv.New64a()
	for _, part := range []string{rec.MsgType, rec.Title, rec.Content} {
		_, _ = h.Write([]byte(part))
		_, _ = h.Write([]byte{0})
	}
	key := h.Sum64()
	if st.contents == nil {
		st.contents = map[uint64]struct{}{}
	}
	if _, seen := st.contents[key]; seen {
		st.stats.RepeatedContent++
	} else {
		st.contents[key] = struct{}{}
	}
	if st.first.IsZero() {
		st.first = rec.At
	}
	st.last = rec.At
	if !st.countOnly {
		st.received = append(st.received, rec)
	}
}

// Stats returns the robot's counters; zero for an unknown token.
func (s *Sim) Stats(token string) Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.robots[token]; st != nil {
		return st.stats
	}
	return Stats{}
}

// RobotStatus is one robot as listed by [Sim.Robots] and GET /_sim/robots.
// It never holds the secret.
type RobotStatus struct {
	Platform string `json:"platform"`
	Token    string `json:"token"`
	Limit    int    `json:"limit"`
	Stats    Stats  `json:"stats"`
	Received int    `json:"received"`
	// BannedUntil is set while the robot is banned.
	BannedUntil *time.Time `json:"bannedUntil,omitempty"`
	// FirstAccepted and LastAccepted are the times of the robot's first
	// and last accepted message, by [Config.Now]; nil before the first.
	FirstAccepted *time.Time `json:"firstAccepted,omitempty"`
	LastAccepted  *time.Time `json:"lastAccepted,omitempty"`
}

// Robots lists every robot, sorted by token.
func (s *Sim) Robots() []RobotStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	out := make([]RobotStatus, 0, len(s.robots))
	for _, st := range s.robots {
		rs := RobotStatus{
			Platform: st.robot.Platform,
			Token:    st.robot.Token,
			Limit:    st.limit,
			Stats:    st.stats,
			Received: st.stats.Accepted,
		}
		if !st.first.IsZero() {
			f, l := st.first, st.last
			rs.FirstAccepted, rs.LastAccepted = &f, &l
		}
		if now.Before(st.bannedUntil) {
			t := st.bannedUntil
			rs.BannedUntil = &t
		}
		out = append(out, rs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Token < out[j].Token })
	return out
}

// InjectFault queues f for the robot's next requests: faults are applied in
// the order injected, before every other check, each to f.Count requests.
// Requests answered by a fault do not count toward the rate window.
func (s *Sim) InjectFault(token string, f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[token] = append(s.faults[token], f)
}

// takeFault pops one use of the token's next fault.
func (s *Sim) takeFault(token string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[token]
	if len(q) == 0 {
		return Fault{}, false
	}
	f := q[0]
	q[0].Count--
	if q[0].Count <= 0 {
		q = q[1:]
	}
	if len(q) == 0 {
		delete(s.faults, token)
	} else {
		s.faults[token] = q
	}
	if st := s.robots[token]; st != nil && f.answers() {
		st.stats.Requests++
		st.stats.Faulted++
		st.record(Request{At: s.cfg.Now(), Outcome: RequestFaulted})
	}
	return f, true
}

// answers reports whether f answers the request (rather than only delaying it).
func (f Fault) answers() bool { return f.Drop || f.Status != 0 || f.Body != "" }

// applyFault answers the request per f; it reports whether the request was
// answered (false: a delay-only fault, go on processing).
func applyFault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	switch {
	case !f.answers():
		return false
	case f.Drop:
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic(http.ErrAbortHandler) // net/http closes the connection
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return true
	case f.Status != 0 || f.Body != "":
		status := f.Status
		if status == 0 {
			status = http.StatusOK
		}
		body := f.Body
		if body == "" {
			body = fmt.Sprintf("robotsim: injected fault %d %s\n", status, http.StatusText(status))
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
	return true
}

// admit applies the ban and the rolling windows to an authenticated
// attempt at now. It returns -1 when admitted (and counted in every
// window), or the index of the window it breached (0: the platform's
// minute, 1: Feishu's second), or -2 while banned. A breach starts the
// robot's ban, when its platform has one. s.mu held.
func (s *Sim) admit(st *robotState, now time.Time) int {
	if now.Before(st.bannedUntil) {
		st.stats.DuringBan++
		return -2
	}
	for i := range st.windows {
		w := &st.windows[i]
		keep := 0
		for keep < len(w.log) && now.Sub(w.log[keep]) >= w.span {
			keep++
		}
		w.log = w.log[keep:]
	}
	for i := range st.windows {
		if len(st.windows[i].log) >= st.windows[i].limit {
			st.stats.Breaches++
			if st.ban > 0 {
				st.bannedUntil = now.Add(st.ban)
				for j := range st.windows {
					st.windows[j].log = nil
				}
			}
			return i
		}
	}
	for i := range st.windows {
		st.windows[i].log = append(st.windows[i].log, now)
	}
	return -1
}

func (s *Sim) newMessageID() string {
	s.nextID++
	return fmt.Sprintf("sim-%08d", s.nextID)
}

// logRefusal logs a refused request at debug level, with the token redacted.
func (s *Sim) logRefusal(ctx context.Context, platform, token string, code int, msg string) {
	s.log.DebugContext(ctx, "robotsim: refused", "platform", platform,
		"robot", Redact(token), "errcode", code, "errmsg", msg)
}

// Redact shortens a token for logs: its first 4 characters and "…".
func Redact(token string) string {
	if len(token) <= 8 {
		return "…"
	}
	return token[:4] + "…"
}

// containsAny reports whether content contains one of keywords (true when
// there are none).
func containsAny(content string, keywords []string) bool {
	if len(keywords) == 0 {
		return true
	}
	for _, k := range keywords {
		if k != "" && strings.Contains(content, k) {
			return true
		}
	}
	return false
}
