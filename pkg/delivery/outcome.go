package delivery

import (
	"time"
)

// Outcome classifies one delivery attempt. Exactly one place, [Deliverer.Classify]
// (with [ClassifyError] for requests without an answer), maps a platform
// answer to an Outcome; the worker maps the
// Outcome to a queue action.
type Outcome int

const (
	// Success: the platform accepted the message. Ack.
	Success Outcome = iota + 1
	// Retryable: network error, timeout, 5xx, 429, "system busy". Retry with backoff.
	Retryable
	// Throttled: the platform said "sending too fast". Start the robot's cool-off;
	// the message waits without spending an attempt.
	Throttled
	// Permanent: will never succeed as is (bad token, sign mismatch, keywords,
	// IP whitelist, bad parameters, too long). Dead-letter.
	Permanent
)

// String names the outcome: "success", "retryable", "throttled", "permanent".
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
	}
	return "unknown"
}

// Result is what one attempt produced. It never contains a secret or a
// webhook token.
type Result struct {
	Outcome Outcome
	// MessageID is the platform's message id on success, when it returns one.
	MessageID string
	// HTTPStatus is the response status, 0 when no response arrived.
	HTTPStatus int
	// ErrCode and ErrMsg are the platform's answer, kept verbatim (redacted).
	ErrCode int
	ErrMsg  string
	// Reason is a short human explanation, e.g. "sign not match" or
	// "keywords not in content".
	Reason string
	// RetryAfter is a wait the platform asked for (anti-abuse gateway), or 0.
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
