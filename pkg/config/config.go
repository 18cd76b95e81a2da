package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/stream"
)

// Platforms botrelay delivers to; [delivery.PlatformNames] lists them all.
const (
	DingTalk = delivery.PlatformDingTalk
	POPO     = delivery.PlatformPOPO
	Feishu   = delivery.PlatformFeishu
	WeCom    = delivery.PlatformWeCom
)

// ErrInvalid is matched by every validation error.
var ErrInvalid = errors.New("config: invalid")

// Duration is a time.Duration read from YAML as "90s", "10m" or "1h".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		// Never the value: it may come from the environment (a secret).
		return fmt.Errorf("line %d: not a duration (e.g. 90s, 10m)", n.Line)
	}
	*d = Duration(v)
	return nil
}

// PlatformLimits is the rate policy of one platform. Every default comes
// from the platform's description (delivery.LookupPlatform).
type PlatformLimits struct {
	// Limit is messages per Window; default 20 (DingTalk, WeCom), 60
	// (POPO), 100 (Feishu).
	Limit int `yaml:"limit"`
	// Window is the platform's counting window; default 1m.
	Window Duration `yaml:"window"`
	// Windows are further windows enforced with Limit/Window in the same
	// decision; default Feishu's 5 per 1s, none elsewhere. Each must be
	// shorter than Window. An empty list (windows: []) removes them.
	Windows []WindowLimit `yaml:"windows"`
	// Margin is added to every window as a safety margin; default 5s (1s
	// for Feishu, whose 1s window a 5s margin would starve). It must
	// cover the longest delay between a grant and the request's arrival:
	// the worker's write deadline after a grant is the margin.
	Margin Duration `yaml:"margin"`
	// CoolOff is how long a throttled robot is left alone; default 10m
	// (DingTalk, POPO: their documented ban), 1m (Feishu, WeCom: no ban
	// documented).
	CoolOff Duration `yaml:"cool_off"`
	// Errcodes add classification rules for the platform's answers, tried
	// before the built-in ones (POPO publishes no error-code list).
	Errcodes []ErrcodeRule `yaml:"errcodes"`
}

// WindowLimit is one further rate window of a platform.
type WindowLimit struct {
	// Limit is messages per Window.
	Limit int `yaml:"limit"`
	// Window is the window's length.
	Window Duration `yaml:"window"`
}

// ErrcodeRule classifies a platform answer by errcode and/or errmsg text;
// see delivery.Rule.
type ErrcodeRule struct {
	// Codes are errcodes the rule matches (0 is always success).
	Codes []int `yaml:"codes"`
	// Contains are errmsg substrings (case-insensitive); with Codes, both
	// must match; alone, a text fallback tried after every code rule.
	Contains []string `yaml:"contains"`
	// Outcome is "retryable", "throttled" or "permanent".
	Outcome string `yaml:"outcome"`
	// Reason is the explanation kept in dead letters; default the errmsg.
	Reason string `yaml:"reason"`
	// RetryAfter is the wait before a retryable answer is tried again.
	RetryAfter Duration `yaml:"retry_after"`
}

var outcomes = map[string]delivery.Outcome{
	"retryable": delivery.Retryable,
	"throttled": delivery.Throttled,
	"permanent": delivery.Permanent,
	"wait":      delivery.Wait,
}

// Rules returns the errcode rules configured for platform, as delivery
// rules (pass them to delivery.WithRules).
func (c *Config) Rules(platform string) []delivery.Rule {
	var out []delivery.Rule
	for _, r := range c.Platforms[platform].Errcodes {
		out = append(out, delivery.Rule{Codes: r.Codes, Contains: r.Contains, Outcome: outcomes[r.Outcome],
			Reason: r.Reason, RetryAfter: time.Duration(r.RetryAfter)})
	}
	return out
}

// Robot is one configured robot.
type Robot struct {
	Name       string   `yaml:"name"`
	Platform   string   `yaml:"platform"`
	Webhook    string   `yaml:"webhook"`
	Secret     string   `yaml:"secret"`
	SecretEnv  string   `yaml:"secret_env"`
	SecretFile string   `yaml:"secret_file"`
	Keywords   []string `yaml:"keywords"`
	// Limit and Window override the platform's rate for this robot (a
	// robot can only be given less than the platform allows).
	Limit  int      `yaml:"limit"`
	Window Duration `yaml:"window"`
	// OnUnknownOutcome is what becomes of a message whose worker died
	// between posting it and recording the answer: "repost" (default; on
	// DingTalk msgUuid drops the repeat) or "dead_letter" (reason
	// unknown_outcome, for groups where a duplicate is worse than a gap).
	OnUnknownOutcome string `yaml:"on_unknown_outcome"`
	// Digest, when set, folds the robot's waiting messages into summary
	// posts once its budget cannot post them one by one in time.
	Digest *Digest `yaml:"digest"`
	// Identity names the platform robot the webhook posts to (see
	// [RobotIdentity]); set by validation, not read from the file. The
	// workers key the robot's rate window and cool-off by it, so a renamed
	// robot keeps them.
	Identity string `yaml:"-"`
}

// Values of Robot.OnUnknownOutcome.
const (
	UnknownRepost     = "repost"
	UnknownDeadLetter = "dead_letter"
)

// MinAckWait is the shortest ack_wait accepted (the worker's floor).
const MinAckWait = 2 * time.Second

// Retry is the retry policy for retryable failures.
type Retry struct {
	// MaxAttempts is how many HTTP attempts a message gets; default 8.
	MaxAttempts int `yaml:"max_attempts"`
	// MaxElapsed bounds the time from the first failed attempt, less the
	// time spent waiting since (rate slots, cool-offs, the platform's
	// "later"); default 1h.
	MaxElapsed Duration `yaml:"max_elapsed"`
	// MaxThrottles dead-letters a message (reason throttled) once the
	// platform throttled it, or asked it to wait, this many times;
	// default 6.
	MaxThrottles int `yaml:"max_throttles"`
	// InitialInterval, MaxInterval and Multiplier shape the exponential
	// backoff (with ±50% jitter); defaults 1s, 5m, 2. MaxInterval also
	// caps every delay a platform or proxy asks for (Retry-After, the
	// anti-abuse "wait", a quota).
	InitialInterval Duration `yaml:"initial_interval"`
	MaxInterval     Duration `yaml:"max_interval"`
	Multiplier      float64  `yaml:"multiplier"`
}

// Config is the whole file.
type Config struct {
	// Prefix names subjects and streams; default "botrelay".
	Prefix string `yaml:"prefix"`
	// Concurrency bounds simultaneous HTTP deliveries per worker; default 32.
	Concurrency int `yaml:"concurrency"`
	// AckWait is how long a message held by a worker that died is kept
	// from the others before JetStream hands it out again; default 30s,
	// at least 1s. Live workers heartbeat, so it never limits a long wait.
	AckWait Duration `yaml:"ack_wait"`
	// HoldMax is the longest rate-limit wait a worker sleeps through holding
	// the message; longer waits go back to JetStream as a delayed
	// redelivery. Default 10s.
	HoldMax Duration `yaml:"hold_max"`
	// LaneIdle is how long a worker keeps pulling a robot's messages after
	// its last one before it stops (the robot's consumer is then deleted by
	// the server); the next message starts it again. Default 10s.
	LaneIdle Duration `yaml:"lane_idle"`
	// ScanInterval is how often a worker reads the outbound stream's
	// per-robot counts, to find robots with work whose announcement it
	// missed; default 10s.
	ScanInterval Duration `yaml:"scan_interval"`
	// Lanes is how a worker reads a robot's messages: "direct" (the
	// default: no consumer; the first message of the robot's subject,
	// deleted once settled) or "consumer" (a consumer per robot with
	// messages, the design before; see docs/design/fleet.md). Digest
	// robots always use a consumer.
	Lanes string `yaml:"lanes"`
	// Replicas of the streams the workers create (1, or 3 on a NATS
	// cluster); default 1.
	Replicas int `yaml:"replicas"`
	// Retry policy.
	Retry Retry `yaml:"retry"`
	// Platforms maps "dingtalk", "popo", "feishu", "wecom" to limits
	// overriding the defaults.
	Platforms map[string]PlatformLimits `yaml:"platforms"`
	// Robots to deliver to.
	Robots []Robot `yaml:"robots"`
	// Apps are the enterprise (two-way) robots whose callbacks the
	// gateway takes; each is also the robot replies to its callbacks go
	// through. A config may have apps and no robots.
	Apps []App `yaml:"apps"`
	// Streams bound the streams' storage (see stream.Limits).
	Streams Streams `yaml:"streams"`
	// Pools are several robots of one chat group behind one name.
	Pools []Pool `yaml:"pools"`
	// Groups are names that fan a message out to robots and pools.
	Groups []Group `yaml:"groups"`
}

// Digest is a robot's digest policy.
type Digest struct {
	// After is the longest a message may wait for its own post; beyond
	// that, waiting messages are folded into one summary post.
	After Duration `yaml:"after"`
	// MaxItems bounds the messages of one digest; 0: as many as fit the
	// platform's size limit.
	MaxItems int `yaml:"max_items"`
	// Title heads every digest; it must carry a keyword when the robot
	// has keywords.
	Title string `yaml:"title"`
}

// Pool is several robots of one platform in one chat group, addressed by
// one name: each message goes to the member whose next slot is earliest.
type Pool struct {
	Name   string   `yaml:"name"`
	Robots []string `yaml:"robots"`
}

// Group is a name that fans a message out to its members (robots or
// pools), one envelope per member with id "<id>.<member>".
type Group struct {
	Name    string   `yaml:"name"`
	Members []string `yaml:"members"`
}

// Streams are the limits of the outbound and dead-letter streams, set by
// the workers when they create or update them. 0 (or absent) means the
// default of stream.DefaultLimits, a negative value no limit. At a limit
// a publish is refused with an error, never dropped.
type Streams struct {
	Out struct {
		// MaxBytes bounds the outbound stream; default 512 MiB.
		MaxBytes int64 `yaml:"max_bytes"`
		// MaxAge removes messages waiting longer; default 168h (7 days).
		MaxAge Duration `yaml:"max_age"`
		// MaxMessagesPerRobot bounds one robot's backlog; default 100000.
		MaxMessagesPerRobot int64 `yaml:"max_messages_per_robot"`
	} `yaml:"out"`
	DeadLetters struct {
		// MaxBytes bounds the dead-letter stream; default 256 MiB.
		MaxBytes int64 `yaml:"max_bytes"`
		// MaxAge is how long dead letters are kept; default 720h (30 days).
		MaxAge Duration `yaml:"max_age"`
	} `yaml:"dead_letters"`
	In struct {
		// MaxBytes bounds the inbound (callback) stream; default 256 MiB.
		MaxBytes int64 `yaml:"max_bytes"`
		// MaxAge is how long inbound events are kept; default 168h.
		MaxAge Duration `yaml:"max_age"`
	} `yaml:"in"`
}

// StreamLimits returns the streams' limits for stream.Topology.
func (c *Config) StreamLimits() stream.Limits {
	s := c.Streams
	return stream.Limits{
		OutMaxBytes: s.Out.MaxBytes, OutMaxAge: time.Duration(s.Out.MaxAge), OutMaxMsgsPerRobot: s.Out.MaxMessagesPerRobot,
		DLQMaxBytes: s.DeadLetters.MaxBytes, DLQMaxAge: time.Duration(s.DeadLetters.MaxAge),
		InMaxBytes: s.In.MaxBytes, InMaxAge: time.Duration(s.In.MaxAge),
	}
}

// defaultLimits are platform's defaults, from its description.
func defaultLimits(platform string) PlatformLimits {
	p, _ := delivery.LookupPlatform(platform)
	l := PlatformLimits{Margin: Duration(p.Margin), CoolOff: Duration(p.CoolOff)}
	for i, w := range p.Limits {
		if i == 0 {
			l.Limit, l.Window = w.Max, Duration(w.Window)
			continue
		}
		l.Windows = append(l.Windows, WindowLimit{Limit: w.Max, Window: Duration(w.Window)})
	}
	return l
}

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	envRE  = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	// yamlQuoted matches the values yaml.v3 quotes in its errors
	// ("cannot unmarshal !!str `...` into int"): they may hold secrets.
	yamlQuoted = regexp.MustCompile("`[^`]*`")
)

// Load reads, expands, parses and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse expands ${NAME} with lookup (except in whole-line comments), parses
// YAML (unknown keys are errors) and validates. Secrets named by secret_env
// and secret_file are read here.
//
// Expansion is textual: quote a reference ("${DINGTALK_OPS_WEBHOOK}") so a
// value with YAML punctuation stays one string, and prefer secret_env for
// secrets, which is read as is.
func Parse(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	expanded, missing := expand(string(data), lookup)
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: environment variables not set: %s", ErrInvalid, strings.Join(missing, ", "))
	}
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, yamlError(err)
	}
	if err := c.resolve(lookup); err != nil {
		return nil, err
	}
	return &c, nil
}

// yamlError is a decoding error with every problem yaml.v3 found (it
// goes on after a wrong type or an unknown key), the values it quotes
// removed: they may hold secrets.
func yamlError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) < 2 {
		return fmt.Errorf("%w: yaml: %s", ErrInvalid, yamlQuoted.ReplaceAllString(err.Error(), "a value"))
	}
	errs := make([]error, len(te.Errors))
	for i, e := range te.Errors {
		errs[i] = errors.New("yaml: " + yamlQuoted.ReplaceAllString(e, "a value"))
	}
	return fmt.Errorf("%w:\n  %w", ErrInvalid, joinIndented(errs))
}

// expand replaces ${NAME} with lookup(NAME) everywhere but in whole-line
// comments (a commented-out example must not require its variables). It
// returns the names not set, each once, in order of appearance.
func expand(data string, lookup func(string) (string, bool)) (string, []string) {
	var missing []string
	lines := strings.SplitAfter(data, "\n")
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		lines[i] = envRE.ReplaceAllStringFunc(line, func(m string) string {
			name := envRE.FindStringSubmatch(m)[1]
			v, ok := lookup(name)
			if !ok && !slices.Contains(missing, name) {
				missing = append(missing, name)
			}
			return v
		})
	}
	return strings.Join(lines, ""), missing
}

// resolve fills defaults, loads secrets and validates, reporting every problem.
func (c *Config) resolve(lookup func(string) (string, bool)) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if c.Prefix == "" {
		c.Prefix = stream.DefaultPrefix
	}
	if err := (stream.Topology{Prefix: c.Prefix}).Validate(); err != nil {
		bad("prefix: must be 1-32 characters of [a-zA-Z0-9_-]")
	}
	if c.Concurrency == 0 {
		c.Concurrency = 32
	}
	setDur(&c.AckWait, 30*time.Second)
	setDur(&c.HoldMax, 10*time.Second)
	if c.HoldMax < 0 {
		bad("hold_max: must not be negative")
	}
	setDur(&c.LaneIdle, 10*time.Second)
	if c.LaneIdle < Duration(time.Second) {
		bad("lane_idle: must be at least 1s, got %s", time.Duration(c.LaneIdle))
	}
	switch c.Lanes {
	case "":
		c.Lanes = LanesDirect
	case LanesConsumer, LanesDirect:
	default:
		bad("lanes: must be %q or %q, got %q", LanesConsumer, LanesDirect, c.Lanes)
	}
	setDur(&c.ScanInterval, 10*time.Second)
	if c.ScanInterval < Duration(time.Second) {
		bad("scan_interval: must be at least 1s, got %s", time.Duration(c.ScanInterval))
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		bad("replicas: must be 1 to 5, got %d", c.Replicas)
	}
	if c.AckWait < Duration(MinAckWait) {
		bad("ack_wait: must be at least %s (workers heartbeat every third of it), got %s", MinAckWait, time.Duration(c.AckWait))
	}
	if c.Concurrency < 0 {
		bad("concurrency: must be positive, got %d", c.Concurrency)
	}
	r := &c.Retry
	if r.MaxAttempts == 0 {
		r.MaxAttempts = 8
	}
	setDur(&r.MaxElapsed, time.Hour)
	setDur(&r.InitialInterval, time.Second)
	setDur(&r.MaxInterval, 5*time.Minute)
	if r.Multiplier == 0 {
		r.Multiplier = 2
	}
	if r.MaxThrottles == 0 {
		r.MaxThrottles = 6
	}
	if r.MaxThrottles < 1 {
		bad("retry.max_throttles: must be at least 1, got %d", r.MaxThrottles)
	}
	if r.MaxAttempts < 1 {
		bad("retry.max_attempts: must be at least 1, got %d", r.MaxAttempts)
	}
	if r.Multiplier < 1 {
		bad("retry.multiplier: must be at least 1, got %g", r.Multiplier)
	}
	if r.InitialInterval <= 0 || r.MaxInterval < r.InitialInterval || r.MaxElapsed <= 0 {
		bad("retry: need 0 < initial_interval <= max_interval and max_elapsed > 0")
	}

	known := delivery.PlatformNames()
	for name := range c.Platforms {
		if !slices.Contains(known, name) {
			bad("platforms.%s: unknown platform (want %s)", name, strings.Join(known, ", "))
		}
	}
	if c.Platforms == nil {
		c.Platforms = map[string]PlatformLimits{}
	}
	for _, p := range known {
		l, d := c.Platforms[p], defaultLimits(p)
		if l.Limit == 0 {
			l.Limit = d.Limit
		}
		setDur(&l.Window, time.Duration(d.Window))
		setDur(&l.Margin, time.Duration(d.Margin))
		setDur(&l.CoolOff, time.Duration(d.CoolOff))
		if l.Windows == nil {
			l.Windows = d.Windows
		}
		for i, w := range l.Windows {
			if w.Limit < 1 || w.Window <= 0 {
				bad("platforms.%s.windows[%d]: limit and window must be positive", p, i)
			} else if l.Window > 0 && w.Window >= l.Window {
				bad("platforms.%s.windows[%d]: window %s must be shorter than window %s", p, i, time.Duration(w.Window), time.Duration(l.Window))
			}
		}
		if l.Limit < 0 || l.Window < 0 || l.Margin < 0 || l.CoolOff < 0 {
			bad("platforms.%s: limit, window, margin and cool_off must not be negative", p)
		}
		for i, r := range l.Errcodes {
			at := fmt.Sprintf("platforms.%s.errcodes[%d]", p, i)
			if _, ok := outcomes[r.Outcome]; !ok {
				bad("%s: outcome: must be retryable, throttled, wait or permanent", at)
			}
			if len(r.Codes) == 0 && len(r.Contains) == 0 {
				bad("%s: set codes or contains", at)
			}
			if slices.Contains(r.Codes, 0) {
				bad("%s: codes: errcode 0 is always success", at)
			}
			if slices.Contains(r.Contains, "") {
				bad("%s: contains: empty text", at)
			}
			if r.RetryAfter < 0 {
				bad("%s: retry_after: must not be negative", at)
			}
		}
		c.Platforms[p] = l
	}

	if len(c.Robots) == 0 && len(c.Apps) == 0 {
		bad("robots: at least one robot (or app) is required")
	}
	seen := map[string]int{}
	sameRobot := map[string]int{} // identity -> index of its first robot
	for i := range c.Robots {
		rb := &c.Robots[i]
		at := fmt.Sprintf("robots[%d]", i)
		if nameRE.MatchString(rb.Name) { // only a valid name: not some other value put there
			at += fmt.Sprintf(" %q", rb.Name)
		}
		switch {
		case rb.Name == "":
			bad("%s: name: required", at)
		case !nameRE.MatchString(rb.Name):
			bad("%s: name: must be 1-64 characters of [A-Za-z0-9_-]", at)
		default:
			if j, dup := seen[rb.Name]; dup {
				bad("%s: name: duplicate of robots[%d]", at, j)
			}
			seen[rb.Name] = i
		}
		p, known := delivery.LookupPlatform(rb.Platform)
		switch {
		case rb.Platform == "":
			bad("%s: platform: required (%s)", at, strings.Join(delivery.PlatformNames(), ", "))
		case !known:
			// Never the value: it may come from the environment.
			bad("%s: platform: not supported (want %s)", at, strings.Join(delivery.PlatformNames(), ", "))
		}
		if err := checkWebhook(rb.Webhook); err != nil {
			bad("%s: webhook: %v", at, err)
		} else if known {
			id, err := RobotIdentity(rb.Platform, rb.Webhook)
			switch j, dup := sameRobot[id]; {
			case err != nil:
				bad("%s: webhook: %v", at, err)
			case dup:
				first := c.Robots[j]
				bad("%s: webhook: %s is the same %s robot as robots[%d] %q (same credential): "+
					"two names would give one platform robot two rate windows; configure it once",
					at, delivery.Redact(rb.Webhook), rb.Platform, j, first.Name)
			default:
				sameRobot[id] = i
				rb.Identity = id
			}
		}
		if err := rb.loadSecret(lookup); err != nil {
			bad("%s: %v", at, err)
		}
		if known && !p.Signed && rb.Secret != "" {
			bad("%s: secret: %s robots are not signed (the webhook's key is the credential)", at, p.Title)
		}
		if known && !p.Keywords && len(rb.Keywords) > 0 {
			bad("%s: keywords: %s robots have no keyword security", at, p.Title)
		}
		for k, kw := range rb.Keywords {
			if strings.TrimSpace(kw) == "" {
				bad("%s: keywords[%d]: empty keyword", at, k)
			}
		}
		if len(rb.Keywords) > 10 {
			bad("%s: keywords: at most 10 (the platforms' limit), got %d", at, len(rb.Keywords))
		}
		switch rb.OnUnknownOutcome {
		case "":
			rb.OnUnknownOutcome = UnknownRepost
		case UnknownRepost, UnknownDeadLetter:
		default:
			bad("%s: on_unknown_outcome: must be %s or %s", at, UnknownRepost, UnknownDeadLetter)
		}
		errs = append(errs, checkDigest(at, rb)...) // digest.go
		if rb.Limit < 0 || rb.Window < 0 {
			bad("%s: limit and window must not be negative", at)
		}
		if pl, ok := c.Platforms[rb.Platform]; ok && rb.Limit >= 0 && rb.Window >= 0 && (rb.Limit > 0 || rb.Window > 0) {
			// The robot's window replaces the platform's first window and
			// any of the same length (see Limit): it must keep within them.
			l := c.Limit(*rb)
			for i, w := range append([]WindowLimit{{Limit: pl.Limit, Window: pl.Window}}, pl.Windows...) {
				if i > 0 && time.Duration(w.Window) != l.Window {
					continue // kept beside the robot's window
				}
				if !withinPlatform(l, w) {
					bad("%s: limit: %d per %s exceeds the %s limit of %d per %s", at, l.Max, l.Window, rb.Platform, w.Limit, time.Duration(w.Window))
					break
				}
			}
		}
	}
	errs = append(errs, c.resolveApps(lookup, seen)...)
	errs = append(errs, c.resolveTargets(seen)...)
	if len(errs) > 0 {
		return fmt.Errorf("%w:\n  %w", ErrInvalid, joinIndented(errs))
	}
	return nil
}

// withinPlatform reports whether a robot limited to l can never exceed the
// platform's pl.Limit in any rolling pl.Window: a platform window is covered
// by ceil(pl.Window / l.Window) robot windows, each admitting l.Max.
func withinPlatform(l limiter.Limit, pl WindowLimit) bool {
	pw := time.Duration(pl.Window)
	if l.Window <= 0 || pw <= 0 {
		return true // reported elsewhere
	}
	windows := int64((pw + l.Window - 1) / l.Window)
	return int64(l.Max)*windows <= int64(pl.Limit)
}

// joinIndented joins errs like errors.Join (each stays reachable by
// errors.Is, errors.As and [Problems]), one per line, indented.
func joinIndented(errs []error) error { return problemList(errs) }

// problemList is every problem of one file.
type problemList []error

func (p problemList) Error() string {
	msgs := make([]string, len(p))
	for i, e := range p {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n  ")
}

func (p problemList) Unwrap() []error { return p }

// Problems returns each problem an error of [Parse] or [Load] reports, in
// file order ("robots[2] \"ops\": webhook: required"), without the
// file's name; an error that lists no problems (a file that cannot be
// read) is returned as its only problem, nil as none.
func Problems(err error) []string {
	if err == nil {
		return nil
	}
	var p problemList
	if !errors.As(err, &p) {
		return []string{err.Error()}
	}
	out := make([]string, len(p))
	for i, e := range p {
		out[i] = e.Error()
	}
	return out
}

func setDur(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// checkWebhook validates a webhook without ever echoing it (it holds a token).
func checkWebhook(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return errors.New("scheme must be https (or http for a local simulator)")
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

func (rb *Robot) loadSecret(lookup func(string) (string, bool)) error {
	n := 0
	for _, s := range []string{rb.Secret, rb.SecretEnv, rb.SecretFile} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return errors.New("secret: set only one of secret, secret_env, secret_file")
	}
	switch {
	case rb.SecretEnv != "":
		v, ok := lookup(rb.SecretEnv)
		if !ok || v == "" {
			return fmt.Errorf("secret_env: environment variable %s is not set", rb.SecretEnv)
		}
		rb.Secret = v
	case rb.SecretFile != "":
		v, err := readSecretFile("secret_file", rb.SecretFile)
		if err != nil {
			return err
		}
		rb.Secret = v
	}
	return nil
}

// Warnings returns what is allowed but unsafe in c, one line each: a
// webhook over plain http:// to a host other than the loopback sends the
// robot's token in clear text. Like errors, warnings never echo a value.
func (c *Config) Warnings() []string {
	var ws []string
	for i, rb := range c.Robots {
		u, err := url.Parse(rb.Webhook)
		if err != nil || u.Scheme != "http" || isLoopback(u.Hostname()) {
			continue
		}
		ws = append(ws, fmt.Sprintf("robots[%d] %q: webhook: http:// to a host other than the loopback sends the robot's token in clear text; use https", i, rb.Name))
	}
	return ws
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Names returns the robots' names in file order.
func (c *Config) Names() []string {
	out := make([]string, len(c.Robots))
	for i, r := range c.Robots {
		out[i] = r.Name
	}
	return out
}

// Robot returns the named robot.
func (c *Config) Robot(name string) (Robot, bool) {
	i := slices.IndexFunc(c.Robots, func(r Robot) bool { return r.Name == name })
	if i < 0 {
		return Robot{}, false
	}
	return c.Robots[i], true
}

// Delivery returns what pkg/delivery needs of rb.
func (rb Robot) Delivery() delivery.Robot {
	return delivery.Robot{Name: rb.Name, Platform: rb.Platform, Webhook: rb.Webhook, Secret: rb.Secret, Keywords: rb.Keywords}
}

// Limit returns rb's rate limit under the platform policy: the
// platform's windows (Feishu: 100 per minute and 5 per second, in one
// decision), the robot's own limit/window replacing the first (the
// platform's windows of another length are kept in Also).
func (c *Config) Limit(rb Robot) limiter.Limit {
	pl := c.Platforms[rb.Platform]
	l := limiter.Limit{Max: pl.Limit, Window: time.Duration(pl.Window), Margin: time.Duration(pl.Margin)}
	if rb.Limit > 0 {
		l.Max = rb.Limit
	}
	if rb.Window > 0 {
		l.Window = time.Duration(rb.Window)
	}
	for _, w := range pl.Windows {
		if time.Duration(w.Window) != l.Window {
			l.Also = append(l.Also, limiter.Window{Max: w.Limit, Window: time.Duration(w.Window)})
		}
	}
	return l
}

// Size returns the size rules of rb's platform, for
// [envelope.Envelope.ValidateFor] and [envelope.SplitFor].
func (c *Config) Size(rb Robot) envelope.Limits {
	p, _ := delivery.LookupPlatform(rb.Platform)
	return p.Size
}

// CoolOff returns how long rb is left alone after the platform throttles it.
func (c *Config) CoolOff(rb Robot) time.Duration {
	return time.Duration(c.Platforms[rb.Platform].CoolOff)
}

// LimitKey is the key of rb's rate window and cool-off in the limiter: its
// [Robot.Identity], or its name when the identity is unknown (a Robot not
// validated by [Parse]).
func (rb Robot) LimitKey() string {
	if rb.Identity != "" {
		return rb.Identity
	}
	return rb.Name
}

// LongestCoolOff is the longest cool-off of the platforms of the
// configured robots: how long the platform may still be banning a robot
// whose cool-off the limiter has forgotten (see limiter.WithRestartQuiet).
func (c *Config) LongestCoolOff() time.Duration {
	var d time.Duration
	for _, rb := range c.Robots {
		d = max(d, c.CoolOff(rb))
	}
	return d
}

// LongestSpan is the longest counting span (Window + Margin) of the
// configured robots: how long a grant forgotten by the limiter may still
// count at the platform.
func (c *Config) LongestSpan() time.Duration {
	var d time.Duration
	for _, rb := range c.Robots {
		l := c.Limit(rb)
		d = max(d, l.Window+l.Margin)
	}
	return d
}

// The values of [Config.Lanes].
const (
	LanesConsumer = "consumer"
	LanesDirect   = "direct"
)
