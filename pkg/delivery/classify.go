package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultMaxRetryAfter is the default cap of every delay a platform, a
// proxy or a rule asks for ([WithMaxRetryAfter]): a Retry-After of 10^9
// seconds must not stall a robot for decades.
const DefaultMaxRetryAfter = 5 * time.Minute

// DefaultWait is the RetryAfter of a [Wait] whose answer names no delay
// (HTTP 429 without Retry-After, {"status":1111} without "wait", a rule
// without RetryAfter), capped by [WithMaxRetryAfter].
const DefaultWait = 5 * time.Second

// MinWait is the shortest RetryAfter of a [Wait] (unless the cap is
// shorter): a server asking for 0 or 1 ms must not make the worker
// hammer it without spending attempts.
const MinWait = time.Second

// UntilCap as a [Rule]'s RetryAfter asks for the longest delay allowed:
// the Deliverer's cap ([WithMaxRetryAfter]). The built-in rule for
// DingTalk's 90030 "webhook over limit" uses it.
const UntilCap time.Duration = math.MaxInt64

// POPO errcodes. POPO publishes no error-code list: these are the values
// of the project's simulator (pkg/robotsim), which the default POPO rules
// mirror. Override them with [WithRules] once the real codes are known.
const (
	POPOErrRobotNotFound = 10001
	POPOErrBadRequest    = 10002
	POPOErrSignature     = 10003
	POPOErrKeywords      = 10004
	POPOErrThrottled     = 10005
)

// Response is a platform's HTTP answer as [Deliverer.Classify] sees it.
type Response struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Header holds the response headers (Retry-After is read).
	Header http.Header
	// Body is the response body, possibly truncated.
	Body []byte
}

// Rule maps a platform errcode (and/or errmsg wording) to an [Outcome].
//
// A rule with Codes matches when the errcode is one of them and, if
// Contains is also set, the errmsg contains one of Contains. A rule with
// Contains only is a text fallback, tried only when no rule with Codes
// matched: classification is by errcode first, by wording second. Contains
// matches case-insensitively, as substrings. Rules are tried in order;
// the first match wins.
type Rule struct {
	// Codes are the errcodes the rule matches.
	Codes []int
	// Contains are errmsg substrings the rule matches.
	Contains []string
	// Outcome is the classification when the rule matches; any
	// [Outcome] but [NotSent], which only [Deliverer.Deliver] decides.
	Outcome Outcome
	// Reason is the [Result.Reason]; "" uses the errmsg.
	Reason string
	// RetryAfter is the [Result.RetryAfter] when the rule matches, capped
	// by [WithMaxRetryAfter] ([UntilCap]: the cap itself). A Wait rule
	// without one waits [DefaultWait].
	RetryAfter time.Duration
}

func (r Rule) validate() error {
	if len(r.Codes) == 0 && len(r.Contains) == 0 {
		return fmt.Errorf("%w: rule matches nothing: set Codes or Contains", ErrInvalidOption)
	}
	if !r.Outcome.Valid() || r.Outcome == NotSent {
		return fmt.Errorf("%w: rule has invalid outcome %d", ErrInvalidOption, r.Outcome)
	}
	for _, c := range r.Codes {
		if c == 0 {
			return fmt.Errorf("%w: errcode 0 is always success", ErrInvalidOption)
		}
	}
	for _, s := range r.Contains {
		if s == "" {
			return fmt.Errorf("%w: rule has an empty Contains entry", ErrInvalidOption)
		}
	}
	if r.RetryAfter < 0 {
		return fmt.Errorf("%w: rule has negative RetryAfter", ErrInvalidOption)
	}
	return nil
}

func (r Rule) matchesCode(code int, lowerMsg string) bool {
	for _, c := range r.Codes {
		if c == code {
			return len(r.Contains) == 0 || r.matchesText(lowerMsg)
		}
	}
	return false
}

func (r Rule) matchesText(lowerMsg string) bool {
	for _, s := range r.Contains {
		if strings.Contains(lowerMsg, strings.ToLower(s)) {
			return true
		}
	}
	return false
}

// DefaultRules returns a copy of the built-in rules of platform (one of
// [PlatformNames]), nil for an unknown platform.
//
// DingTalk, Feishu and WeCom follow the errcode tables of PLATFORMS.md;
// POPO mirrors the simulator's codes and falls back on wording. An errcode no rule matches
// is Permanent (a retry loop on an unknown refusal is worse than a
// dead-lettered message that can be replayed).
func DefaultRules(platform string) []Rule {
	p := lookup(platform)
	if p == nil {
		return nil
	}
	return cloneRules(p.rules)
}

// cloneRules deep-copies rs, so that no caller shares the tables' slices.
func cloneRules(rs []Rule) []Rule {
	out := make([]Rule, len(rs))
	for i, r := range rs {
		r.Codes = append([]int(nil), r.Codes...)
		r.Contains = append([]string(nil), r.Contains...)
		out[i] = r
	}
	return out
}

// securityText holds the wordings of a failed security check, both
// platforms, English first and Chinese as a fallback.
var securityText = []Rule{
	{Contains: []string{"keywords not in content", "keyword", "关键词"}, Outcome: Permanent, Reason: "keywords not in content"},
	// Exact phrases before the bare words: DingTalk's Chinese "sign not
	// match" advice mentions the timestamp, and the reverse may hold too.
	{Contains: []string{"sign not match", "签名不匹配"}, Outcome: Permanent, Reason: "sign not match"},
	{Contains: []string{"invalid timestamp", "timestamp", "时间戳"}, Outcome: Permanent, Reason: "invalid timestamp (check the clock)"},
	{Contains: []string{"sign", "签名"}, Outcome: Permanent, Reason: "sign not match"},
	{Contains: []string{"whitelist", "白名单"}, Outcome: Permanent, Reason: "ip not in whitelist"},
}

// withCodes returns rs with codes set on each.
func withCodes(rs []Rule, codes ...int) []Rule {
	out := make([]Rule, len(rs))
	for i, r := range rs {
		r.Codes = codes
		out[i] = r
	}
	return out
}

func concat(parts ...[]Rule) []Rule {
	var out []Rule
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var dingTalkRules = concat(
	[]Rule{
		{Codes: []int{-1}, Outcome: Retryable, Reason: "system busy"},
		{Codes: []int{130101, 410100}, Outcome: Throttled, Reason: "send too fast"},
		{Codes: []int{90030}, Outcome: Wait, Reason: "webhook over limit: quota used up", RetryAfter: UntilCap},
	},
	withCodes(securityText, 310000),
	[]Rule{
		{Codes: []int{310000}, Outcome: Permanent, Reason: "security check failed"},
		{Codes: []int{300001, 300005, 400101}, Outcome: Permanent, Reason: "token does not exist"},
		{Codes: []int{400013}, Outcome: Permanent, Reason: "group disbanded"},
		{Codes: []int{400102}, Outcome: Permanent, Reason: "robot disabled"},
		{Codes: []int{400105}, Outcome: Permanent, Reason: "unsupported msgtype"},
		{Codes: []int{400106}, Outcome: Permanent, Reason: "robot does not exist"},
		{Codes: []int{430101, 430102, 430103, 430104}, Outcome: Permanent, Reason: "content rejected"},
		{Codes: []int{460101, 101002}, Outcome: Permanent, Reason: "message too long"},
		{Codes: []int{40035}, Outcome: Permanent, Reason: "missing parameter"},
		{Codes: []int{43002}, Outcome: Permanent, Reason: "must be POST"},
		{Codes: []int{43004}, Outcome: Permanent, Reason: "wrong content type"},
		// Text fallbacks for codes not in the table.
		{Contains: []string{"send too fast", "too fast", "发送速度太快", "发送过快"}, Outcome: Throttled, Reason: "send too fast"},
		{Contains: []string{"webhook over limit"}, Outcome: Wait, Reason: "webhook over limit: quota used up", RetryAfter: UntilCap},
		{Contains: []string{"system busy", "busy", "系统繁忙"}, Outcome: Retryable, Reason: "system busy"},
	},
	securityText,
	[]Rule{
		{Contains: []string{"not exist", "不存在"}, Outcome: Permanent, Reason: "token does not exist"},
	},
)

var popoRules = concat(
	[]Rule{
		{Codes: []int{POPOErrRobotNotFound}, Outcome: Permanent, Reason: "robot not found"},
		{Codes: []int{POPOErrBadRequest}, Outcome: Permanent, Reason: "bad request"},
		{Codes: []int{POPOErrSignature}, Contains: []string{"timestamp"}, Outcome: Permanent, Reason: "invalid timestamp (check the clock)"},
		{Codes: []int{POPOErrSignature}, Outcome: Permanent, Reason: "sign not match"},
		{Codes: []int{POPOErrKeywords}, Outcome: Permanent, Reason: "keywords not in content"},
		{Codes: []int{POPOErrThrottled}, Outcome: Throttled, Reason: "send too fast"},
		// Text fallbacks. A Throttled result spends no attempt (the robot
		// cools off and the same message is tried again), so only wordings
		// that name the sending rate count: not a bare "limit", which
		// "message size exceeds limit" or "ip is limited" would match and
		// stall the robot forever. "too long" comes first so that a length
		// limit is never taken for a rate limit.
		{Contains: []string{"too long", "length"}, Outcome: Permanent, Reason: "message too long"},
		{Contains: []string{"too fast", "frequency", "rate limit", "频率", "太快"}, Outcome: Throttled, Reason: "send too fast"},
	},
	securityText,
	[]Rule{
		{Contains: []string{"not found", "not exist", "不存在"}, Outcome: Permanent, Reason: "robot not found"},
		{Contains: []string{"busy", "timeout", "繁忙"}, Outcome: Retryable, Reason: "platform busy"},
	},
)

// answer is a body parsed by [parseAnswer]. A field that is absent or does
// not parse is reported absent.
type answer struct {
	hasCode   bool
	code      int
	msg       string
	messageID string
	hasStatus bool
	status    int
	hasWait   bool
	wait      float64
	gwMsg     string
}

// parseAnswer reads body as an answer of platform p: its errcode and
// errmsg under the names p gives (DingTalk, POPO, WeCom: "errcode" and
// "errmsg"; Feishu: "code" and "msg", or the legacy "StatusCode" and
// "StatusMessage"), plus the fields of DingTalk's anti-abuse gateway
// ("status", "wait", "msg"). It fails only when body is not a JSON
// object; every field is then parsed on its own and leniently (one field
// of an unexpected type, "data": "" or "status": "fail", must not hide
// the errcode beside it): errcode, status and wait as a JSON number or a
// string holding one, errmsg (and the gateway's msg) as a string (any
// other JSON value is kept as its text), data.msgId as a string or
// number. A field of another type is ignored.
func parseAnswer(p *Platform, body []byte) (answer, bool) {
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil || raw == nil {
		return answer{}, false
	}
	var a answer
	codeFields, msgFields := errCodeFields, errMsgFields
	if p != nil {
		codeFields, msgFields = p.codeFields, p.msgFields
	}
	for _, f := range codeFields {
		if v, ok := parseNumber(raw[f]); ok {
			a.hasCode, a.code = true, int(v)
			break
		}
	}
	for _, f := range msgFields {
		if v, ok := raw[f]; ok {
			a.msg = parseText(v)
			break
		}
	}
	a.messageID = parseMessageID(raw["data"])
	if f, ok := parseNumber(raw["status"]); ok {
		a.hasStatus, a.status = true, int(f)
	}
	a.wait, a.hasWait = parseNumber(raw["wait"])
	a.gwMsg = parseText(raw["msg"])
	return a, true
}

// maxJSONInt bounds the numbers parseNumber accepts, so that the
// conversion to int is exact.
const maxJSONInt = 1 << 53

// parseNumber reads a JSON number or a JSON string holding one; false for
// an absent field, null, any other type, or a value that is not a finite
// number within ±2^53.
func parseNumber(raw json.RawMessage) (float64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	var s string
	if raw[0] == '"' {
		if json.Unmarshal(raw, &s) != nil {
			return 0, false
		}
	} else {
		s = string(raw)
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) > maxJSONInt {
		return 0, false
	}
	return f, true
}

// parseText reads a JSON string; another JSON value is kept as its text,
// null or an absent field as "".
func parseText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// parseMessageID reads data.msgId (a string or a number); "" when data is
// not an object or has no msgId.
func parseMessageID(data json.RawMessage) string {
	var d struct {
		MsgID json.RawMessage `json:"msgId"`
	}
	if len(data) == 0 || json.Unmarshal(data, &d) != nil {
		return ""
	}
	if len(d.MsgID) == 0 || string(d.MsgID) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(d.MsgID, &s) == nil {
		return s
	}
	return string(d.MsgID)
}

// Classify maps one HTTP answer of platform to a [Result]. It is the one
// place where platform answers are classified. The body is read first,
// field by field (an optional field of an unexpected type is ignored, an
// errcode may be a number or a string holding one):
//
//   - nonzero errcode, at any HTTP status: the first matching [Rule] (the
//     [WithRules] overrides, then [DefaultRules]); no match: Permanent,
//     with Reason "unknown errcode N". Under a status outside 2xx, Err
//     also wraps [ErrHTTPStatus], and a Retryable or Wait result without
//     a rule RetryAfter takes the Retry-After header's. DingTalk's 90030
//     "webhook over limit" is Wait with RetryAfter = the cap.
//   - An anti-abuse gateway answer {"status":N≠0,"wait":S} (no errcode), at
//     any HTTP status: Wait, RetryAfter S seconds ([DefaultWait] when
//     absent), ErrCode N, ErrMsg its "msg".
//
// Otherwise (no errcode, or errcode 0) the HTTP status decides:
//
//   - HTTP 429: Wait; a Retry-After header (seconds or HTTP date) sets
//     RetryAfter ([DefaultWait] when absent or past).
//   - HTTP 408 and 5xx: Retryable; a Retry-After header sets RetryAfter.
//   - Any other status outside 2xx (other 4xx; 1xx and 3xx: redirects are
//     not followed, a webhook that redirects is misconfigured): Permanent,
//     even with errcode 0.
//   - 2xx whose body is not JSON, or JSON without an errcode: Retryable
//     with [ErrBadResponse]. Such bodies come from proxies and captive
//     portals, not from the platforms; DingTalk's msgUuid makes the retry
//     safe.
//   - 2xx with errcode 0: Success, MessageID from data.msgId.
//
// Every RetryAfter is between 0 and the cap ([WithMaxRetryAfter], default
// [DefaultMaxRetryAfter]) whatever the answer says (huge, negative, NaN or
// fractional numbers, dates far in the future or in the past); a Wait's is
// at least [MinWait] unless the cap is shorter.
//
// The result carries ErrCode and ErrMsg verbatim; [Deliverer.Deliver]
// removes the robot's token and secret from them.
func (d *Deliverer) Classify(platform string, resp Response) Result {
	res := d.classify(platform, resp)
	res.RetryAfter = d.capDelay(res.RetryAfter)
	if res.Outcome == Wait {
		res.RetryAfter = d.waitDelay(res.RetryAfter)
	}
	return res
}

func (d *Deliverer) classify(platform string, resp Response) Result {
	res := Result{HTTPStatus: resp.StatusCode}
	ans, isJSON := parseAnswer(lookup(platform), resp.Body)
	if ans.hasCode {
		res.ErrCode = ans.code
		res.ErrMsg = ans.msg
	}
	s := resp.StatusCode
	is2xx := s >= 200 && s <= 299

	if ans.hasCode && ans.code != 0 {
		res.Outcome = Permanent
		res.Reason = fmt.Sprintf("unknown errcode %d", res.ErrCode)
		if r, ok := d.match(platform, res.ErrCode, res.ErrMsg); ok {
			res.Outcome = r.Outcome
			res.RetryAfter = r.RetryAfter
			res.Reason = r.Reason
			if res.Reason == "" {
				res.Reason = res.ErrMsg
			}
		}
		res.Err = fmt.Errorf("%w: errcode %d: %s", ErrRefused, res.ErrCode, res.ErrMsg)
		if !is2xx {
			res.Err = fmt.Errorf("%w (%w: %d %s)", res.Err, ErrHTTPStatus, s, http.StatusText(s))
			if (res.Outcome == Retryable || res.Outcome == Wait) && res.RetryAfter == 0 {
				res.RetryAfter = retryAfter(resp.Header, d.now())
			}
		}
		return res
	}

	// Anti-abuse gateway.
	if !ans.hasCode && ans.hasStatus && ans.status != 0 {
		res.Outcome = Wait
		res.ErrCode = ans.status
		res.ErrMsg = ans.gwMsg
		if ans.hasWait {
			res.RetryAfter = seconds(ans.wait)
		}
		res.RetryAfter = d.waitDelay(d.capDelay(res.RetryAfter))
		res.Reason = fmt.Sprintf("anti-abuse gateway: wait %s", res.RetryAfter)
		res.Err = fmt.Errorf("%w: anti-abuse gateway status %d", ErrRefused, res.ErrCode)
		return res
	}

	switch {
	case s == http.StatusTooManyRequests:
		res.Outcome = Wait
		res.RetryAfter = retryAfter(resp.Header, d.now())
		res.Reason = fmt.Sprintf("HTTP %d", s)
		res.Err = fmt.Errorf("%w: %d %s", ErrHTTPStatus, s, http.StatusText(s))
		return res
	case s == http.StatusRequestTimeout || s >= 500:
		res.Outcome = Retryable
		res.RetryAfter = retryAfter(resp.Header, d.now())
		res.Reason = fmt.Sprintf("HTTP %d", s)
		res.Err = fmt.Errorf("%w: %d %s", ErrHTTPStatus, s, http.StatusText(s))
		return res
	case !is2xx:
		res.Outcome = Permanent
		res.Reason = fmt.Sprintf("HTTP %d", s)
		res.Err = fmt.Errorf("%w: %d %s", ErrHTTPStatus, s, http.StatusText(s))
		return res
	}

	if !ans.hasCode {
		res.Outcome = Retryable
		res.Reason = "response is not a platform answer"
		what := "not JSON"
		if isJSON {
			what = "no errcode"
		}
		res.Err = fmt.Errorf("%w: HTTP %d, %s", ErrBadResponse, s, what)
		return res
	}

	res.Outcome = Success
	res.MessageID = ans.messageID
	return res
}

// capDelay bounds a requested delay to [0, the cap].
func (d *Deliverer) capDelay(v time.Duration) time.Duration {
	return min(max(v, 0), d.maxRetryAfter)
}

// waitDelay is the RetryAfter of a Wait asking for v (already capped):
// [DefaultWait] for none, at least [MinWait], never over the cap.
func (d *Deliverer) waitDelay(v time.Duration) time.Duration {
	if v <= 0 {
		v = DefaultWait
	}
	return min(max(v, MinWait), d.maxRetryAfter)
}

// maxDelaySeconds bounds [seconds]: 9e9 s (285 years) is below
// [math.MaxInt64] nanoseconds with room for float rounding.
const maxDelaySeconds = 9e9

// seconds converts a number of seconds to a Duration without overflow:
// 0 for NaN, negative numbers and zero, saturating at maxDelaySeconds.
func seconds(f float64) time.Duration {
	switch {
	case !(f > 0): // NaN too
		return 0
	case f >= maxDelaySeconds:
		return time.Duration(maxDelaySeconds) * time.Second
	}
	return time.Duration(f * float64(time.Second))
}

// match finds the rule for code and msg: codes first, then wording.
func (d *Deliverer) match(platform string, code int, msg string) (Rule, bool) {
	rules := d.rules[platform]
	lower := strings.ToLower(msg)
	for _, r := range rules {
		if len(r.Codes) > 0 && r.matchesCode(code, lower) {
			return r, true
		}
	}
	for _, r := range rules {
		if len(r.Codes) == 0 && r.matchesText(lower) {
			return r, true
		}
	}
	return Rule{}, false
}

// retryAfter reads a Retry-After header: delay-seconds (leniently: any
// finite decimal number, fractions and exponents included) or an HTTP
// date. It returns 0 for an absent, unparsable, non-positive or past
// value, and saturates instead of overflowing; the caller caps it.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if isDecimal(v) {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0
		}
		return seconds(f) // ±Inf from ErrRange saturates or gives 0
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 { // Sub saturates
			return d.Round(time.Second)
		}
	}
	return 0
}

// isDecimal reports whether v looks like a decimal number: digits with an
// optional sign, point and exponent. It keeps out what ParseFloat would
// also take ("NaN", "Inf", "0x1p3", "1_000").
func isDecimal(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= '0' && c <= '9' || c == '.' || c == '+' || c == '-' || c == 'e' || c == 'E') {
			return false
		}
	}
	return v[0] != 'e' && v[0] != 'E'
}

// ClassifyError maps an error of [http.Client.Do] (no response arrived) to
// a Retryable [Result] whose Err wraps [ErrRequest]:
//
//   - parent ctx cancelled: Err also wraps [context.Canceled], so the
//     worker can tell a shutdown from a failure (Reason "cancelled");
//   - parent ctx past its deadline: Err wraps [context.DeadlineExceeded];
//   - the request's own timeout, or any net timeout: Reason "request timed out";
//   - connection refused or reset, DNS failure, any other transport error.
//
// A *url.Error's URL (which holds the webhook's token) is replaced by
// [Redact]'s form.
func ClassifyError(ctx context.Context, err error) Result {
	res := Result{Outcome: Retryable}
	if err == nil {
		res.Reason = "request failed"
		res.Err = ErrRequest
		return res
	}
	err = redactURLError(err)
	if perr := ctx.Err(); perr != nil {
		res.Reason = "cancelled"
		if errors.Is(perr, context.DeadlineExceeded) {
			res.Reason = "deadline exceeded"
		}
		res.Err = fmt.Errorf("%w: %w (%v)", ErrRequest, perr, err)
		return res
	}
	var nerr net.Error
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &nerr) && nerr.Timeout():
		res.Reason = "request timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		res.Reason = "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		res.Reason = "connection reset"
	case errors.As(err, &dnsErr):
		res.Reason = "DNS lookup failed"
	default:
		res.Reason = "transport error"
	}
	res.Err = fmt.Errorf("%w: %w", ErrRequest, err)
	return res
}
