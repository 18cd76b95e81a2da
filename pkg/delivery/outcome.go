package delivery

import (
	"time"
)

// Outcome classifies one delivery attempt. Exactly one place, [Deliverer.Classify]
// (with [ClassifyError] for requests without an answer), maps a platform
// answer to an Outcome; [Deliverer.Deliver] adds [NotSent]. The worker
// maps the Outcome to a queue action.
type Outcome int

// The outcomes. Their numbers are stable: new outcomes are added at the end.
const (
	// Success: the platform accepted the message. Ack.
	Success Outcome = iota + 1
	// Retryable: network error, timeout, 5xx, 408, "system busy", a proxy's
	// page. Something may be broken: retry with backoff, spending an
	// attempt; RetryAfter, when set, is the least delay the platform asked
	// for.
	Retryable
	// Throttled: the platform said "sending too fast". Start the robot's cool-off;
	// the message waits without spending an attempt.
	Throttled
	// Permanent: will never succeed as is (bad token, sign mismatch, keywords,
	// IP whitelist, bad parameters, too long). Dead-letter.
	Permanent
	// Wait: the platform or a proxy said "later" and nothing is broken:
	// HTTP 429, the anti-abuse gateway's {"status":1111,"wait":N},
	// DingTalk's 90030 "webhook over limit" (a quota used up). Try the same
	// message again after RetryAfter, which is always set (capped by
	// [WithMaxRetryAfter]), without spending an attempt and without a
	// cool-off of the robot; bound the number or total time of such waits as
	// for throttles.
	Wait
	// NotSent: the request was abandoned before it was written because the
	// call's write deadline ([WithWriteDeadline]) passed while connecting
	// (dial, proxy CONNECT, TLS handshake) or writing. The platform received
	// no complete request, so it cannot have processed the message: no
	// attempt was made and the rate slot it was granted was not used by the
	// platform. Try again with a fresh slot. Reason says which phase was too
	// slow; HTTPStatus and ErrCode are 0.
	NotSent
)

// String names the outcome: "success", "retryable", "throttled",
// "permanent", "wait", "not_sent"; "unknown" for any other value.
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Retryable:
		return "retryable"
	case Throttled:
		return "throttled"
	case Permanent:
		return "permanent"
	case Wait:
		return "wait"
	case NotSent:
		return "not_sent"
	}
	return "unknown"
}

// Valid reports whether o is one of the outcomes above.
func (o Outcome) Valid() bool { return o >= Success && o <= NotSent }

// Result is what one attempt produced. It never contains a secret or a
// webhook token.
type Result struct {
	Outcome Outcome
	// MessageID is the platform's message id on success, when it returns one.
	MessageID string
	// HTTPStatus is the response status, 0 when no response arrived.
	HTTPStatus int
	// ErrCode and ErrMsg are the platform's answer, kept verbatim (redacted)
	// whatever the outcome: the errcode (or the anti-abuse gateway's
	// status) and errmsg (or the gateway's msg); 0 and "" when the answer
	// had none.
	ErrCode int
	ErrMsg  string
	// Reason is a short human explanation, e.g. "sign not match" or
	// "keywords not in content".
	Reason string
	// RetryAfter is the delay the platform (or a rule) asked for, between 0
	// and the Deliverer's cap ([WithMaxRetryAfter]). A Wait result always
	// has one; a Retryable one may (a Retry-After header, a rule); 0 means
	// none.
	RetryAfter time.Duration
	// Err is the underlying error for non-success outcomes (redacted).
	Err error
}

// Robot is what delivery needs to know of one configured robot.
type Robot struct {
	// Name is the configured name (safe to log).
	Name string
	// Platform is "dingtalk" or "popo".
	Platform string
	// Webhook is the full webhook URL; it holds an access token: never log it.
	Webhook string
	// Secret is the signing secret, "" when the robot has none. Never log it.
	Secret string
	// Keywords, when non-empty, must appear (one at least) in the content.
	Keywords []string
}
