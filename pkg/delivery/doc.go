// Package delivery posts notifications to chat-group robots (DingTalk and
// NetEase POPO custom robots) and says what became of each attempt.
//
// A [Deliverer] makes exactly one attempt per [Deliverer.Deliver] call: it
// renders the [envelope.Envelope] in the platform's format, signs it with
// the clock at that moment (a signature is valid for one hour only, so it
// is never computed in advance and never reused), posts it over one shared
// keep-alive HTTP client and classifies the answer into an [Outcome]:
// Success, Retryable, Throttled or Permanent. Retrying, rate limiting and
// dead-lettering belong to the caller (the worker); this package only
// reports.
//
// # Classification
//
// [Deliverer.Classify] and [ClassifyError], in classify.go, are the one
// place where platform answers are interpreted. The platforms answer
// refusals with HTTP 200 and a nonzero "errcode": HTTP 200 alone is never
// taken for success. Errcodes are looked up first, errmsg wording only as
// a fallback; unknown errcodes are Permanent (with ErrCode and ErrMsg
// kept), so that an unforeseen refusal cannot loop. A nonzero errcode
// decides whatever the HTTP status; the status decides only when the body
// has none. POPO publishes no code list, so its rules are configurable
// with [WithRules].
//
// Messages that cannot succeed are refused before any request, without
// spending the robot's rate budget: a robot whose keywords are not in the
// content ([CheckKeywords], [ErrMissingKeyword]), an invalid message, a
// DingTalk body over 20000 bytes.
//
// # Secrets
//
// Webhook URLs hold credentials (DingTalk's access_token, POPO's hook id)
// and robots may have signing secrets. No [Result] field and no log line
// of this package contains them: errors from net/http, which quote the
// full URL, are rewritten with [Redact]'s form, and every text of a Result
// is scrubbed of the robot's credentials. Use [Redact] to log webhooks.
//
// # Proxies
//
// The default client honours HTTPS_PROXY, HTTP_PROXY and NO_PROXY through
// [net/http.ProxyFromEnvironment] (read once per process).
package delivery
