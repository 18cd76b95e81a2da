// Package delivery posts notifications to chat-group robots (DingTalk and
// NetEase POPO custom robots, Feishu/Lark custom bots, WeCom group robots)
// and says what became of each attempt.
//
// # Platforms
//
// Each platform is described once, by a [Platform] (platform.go holds the
// list, one file per platform the rest): webhook shape and credential,
// default windows, margin and cool-off, envelope size rules, body limit,
// signing, rendering, answer fields and classification rules. Other
// packages consult [LookupPlatform] and [Platforms]; a new platform is a
// new file and a line in the list.
//
// A [Deliverer] makes exactly one attempt per [Deliverer.Deliver] call: it
// renders the [envelope.Envelope] in the platform's format, signs it with
// the clock at that moment (a signature is valid for one hour only, so it
// is never computed in advance and never reused), posts it over one shared
// keep-alive HTTP client and classifies the answer into an [Outcome]:
// Success, Retryable, Throttled, Permanent, Wait (the platform or a proxy
// said "later": 429, the anti-abuse gateway, a used-up quota) or NotSent
// (the call's write deadline, [WithWriteDeadline], passed before the
// request was written). Retrying, rate limiting and dead-lettering belong
// to the caller (the worker); this package only reports.
//
// # Delays
//
// Every delay an answer asks for (Retry-After, the gateway's "wait", a
// rule's RetryAfter) is capped by [WithMaxRetryAfter] (default
// [DefaultMaxRetryAfter]) and can neither overflow nor go negative: a
// Retry-After of 10^9 seconds waits five minutes, not decades.
//
// # Write deadline
//
// A request is worth sending only soon after its rate slot was granted.
// [WithWriteDeadline] gives one call a deadline by which connecting and
// writing the request must be done; past it the request is abandoned and
// the result is [NotSent], which guarantees the platform received no
// complete request. The default client speaks HTTP/1.1 only, which this
// guarantee needs.
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
// body over the platform's [Platform.MaxBody], a WeCom text or markdown
// over its 2,048 / 4,096 bytes.
//
// # Secrets
//
// Webhook URLs hold credentials (DingTalk's access_token, POPO's hook id,
// Feishu's hook token, WeCom's key)
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
