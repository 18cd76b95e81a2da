package delivery

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/botrelay/botrelay/pkg/envelope"
)

// Platform names, as in [Robot.Platform] and the configuration.
const (
	PlatformDingTalk = "dingtalk"
	PlatformPOPO     = "popo"
	PlatformFeishu   = "feishu"
	PlatformWeCom    = "wecom"
)

// platformList is the one list of the platforms botrelay speaks. Each
// entry is described in its own file (dingtalk.go, popo.go, feishu.go,
// wecom.go): adding a platform is one new file, its tests and one line
// here. Every other package (config, the envelope's size rules through
// [Platform.Size], the worker's limits and cool-offs through config)
// consults [LookupPlatform] and [Platforms]. The simulator (pkg/robotsim)
// deliberately does not: it is the independent referee.
var platformList = []*Platform{&dingTalkPlatform, &popoPlatform, &feishuPlatform, &weComPlatform}

// Window is one rate window of a platform: at most Max messages in any
// rolling Window.
type Window struct {
	Max    int
	Window time.Duration
}

// Platform is everything botrelay knows of one chat platform. The
// exported fields are its facts and defaults (see PLATFORMS.md); the
// rendering, signing and classification are reached through
// [Deliverer.Deliver], [Deliverer.Classify] and [CheckKeywords]. Get one
// with [LookupPlatform]; the values returned are copies.
type Platform struct {
	// Name is the platform's name in configurations and [Robot.Platform].
	Name string
	// Title is its human name ("DingTalk").
	Title string
	// Webhook is the shape of a robot's webhook URL, e.g.
	// "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…".
	Webhook string
	// CredentialIn says where the webhook holds the credential, e.g.
	// "key query parameter", for messages about a webhook without one.
	CredentialIn string
	// Limits are the default rate windows, enforced together in one
	// limiter decision (Feishu: 100 per minute and 5 per second); the
	// first is the longest.
	Limits []Window
	// Margin is the default safety margin added to every window: it must
	// cover the delay between a granted slot and the request's arrival.
	Margin time.Duration
	// CoolOff is how long a robot the platform throttled is left alone by
	// default (DingTalk documents a 10-minute ban; Feishu and WeCom
	// document none, so theirs is shorter).
	CoolOff time.Duration
	// Size is the envelope's size rules for this platform: producers
	// check, or split, a message with [envelope.Envelope.ValidateFor] and
	// [envelope.SplitFor] for the robot it is addressed to.
	Size envelope.Limits
	// MaxBody is the largest request body the platform accepts, in bytes;
	// a larger one is refused before sending. 0: no known limit.
	MaxBody int
	// Signed reports whether robots of the platform may have a signing
	// secret (WeCom's key is the only credential: no signature).
	Signed bool
	// Keywords reports whether the platform has keyword security (a
	// message must hold one of the robot's keywords).
	Keywords bool

	// credential finds the robot's credential (token, hook id, key) in
	// its parsed webhook; "" when absent.
	credential func(u *url.URL) string
	// render builds the request of env for robot, signed at now.
	render func(env *envelope.Envelope, robot Robot, now time.Time) (outgoing, error)
	// keywordText is the text the platform searches for keywords.
	keywordText func(env *envelope.Envelope) (string, error)
	// rules are the built-in classification rules.
	rules []Rule
	// codeFields and msgFields name the answer's errcode and errmsg
	// fields, the first present winning (Feishu: "code", then the legacy
	// "StatusCode").
	codeFields, msgFields []string
}

// outgoing is a rendered request: where to post what.
type outgoing struct {
	url  string
	body any
}

// Credential returns the credential held in webhook (DingTalk's and
// WeCom's query parameter, POPO's and Feishu's hook path segment), ""
// when webhook is not a URL of the platform's shape. It serves the
// redaction of results and the robot's identity (two robots with the
// same platform and credential are the same robot); never log it.
func (p Platform) Credential(webhook string) string {
	u, err := url.Parse(webhook)
	if err != nil || p.credential == nil {
		return ""
	}
	return p.credential(u)
}

// LookupPlatform returns the platform named name ("dingtalk", "popo",
// "feishu", "wecom").
func LookupPlatform(name string) (Platform, bool) {
	for _, p := range platformList {
		if p.Name == name {
			return p.clone(), true
		}
	}
	return Platform{}, false
}

// Platforms returns every platform, in a fixed order.
func Platforms() []Platform {
	out := make([]Platform, len(platformList))
	for i, p := range platformList {
		out[i] = p.clone()
	}
	return out
}

// PlatformNames returns the names of [Platforms], in the same order.
func PlatformNames() []string {
	out := make([]string, len(platformList))
	for i, p := range platformList {
		out[i] = p.Name
	}
	return out
}

func (p *Platform) clone() Platform {
	c := *p
	c.Limits = slices.Clone(p.Limits)
	c.rules = cloneRules(p.rules)
	return c
}

func lookup(name string) *Platform {
	for _, p := range platformList {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// queryCredential finds the credential in the query parameter key.
func queryCredential(key string) func(*url.URL) string {
	return func(u *url.URL) string { return strings.TrimSpace(u.Query().Get(key)) }
}

// hookCredential finds the credential in the last non-empty path
// segment when the one before it is "hook" (case-insensitive), unescaped;
// "" otherwise.
func hookCredential(u *url.URL) string {
	var segs []string
	for _, s := range strings.Split(u.EscapedPath(), "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	n := len(segs)
	if n < 2 || !strings.EqualFold(segs[n-2], "hook") {
		return ""
	}
	id, err := url.PathUnescape(segs[n-1])
	if err != nil {
		return ""
	}
	return strings.TrimSpace(id)
}

// errFields are the answer fields of the platforms that answer
// {"errcode":…,"errmsg":…}.
var (
	errCodeFields = []string{"errcode"}
	errMsgFields  = []string{"errmsg"}
)
