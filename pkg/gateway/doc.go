// Package gateway is an HTTP front of [publisher.Publisher] for services
// not written in Go: they POST a JSON message and get back, once the
// JetStream stream has stored it durably, its id and stream sequence.
//
// # Endpoints
//
//   - POST /v1/messages — one message (body below) → 202 with a [Result].
//     "robot" may name a pool (addressed like a robot) or, with
//     [publisher.WithGroups], a group: a copy per member with ids
//     "<id>.<member>" → a [MultiResponse].
//   - POST /v1/fanout — the same body with "robots": [...] instead of
//     "robot": a copy per robot, with ids "<id>.<robot>" (see
//     [publisher.Publisher.FanOut]) → a [MultiResponse]. A group stands
//     for its members; a robot named twice, directly or through groups,
//     gets one copy.
//   - POST /v1/alertmanager/{target} — Prometheus Alertmanager's webhook
//     (payload version 4) for a robot, pool or group: one markdown
//     message per notification (per member), rendered by
//     [Options.Alerts] (see package alertmanager) within the platform's
//     size, id "am-<hash>" of the groupKey and the alerts, so a retried
//     notification is stored once. 5xx exactly when not stored (also over
//     the token's rate or quota: 503, as Alertmanager retries only 5xx);
//     404 for an unknown target, 400/422 for a payload never acceptable.
//   - POST /v1/messages:batch — NDJSON, one message body per line (each
//     with its robot); blank lines are skipped → a [MultiResponse]. The
//     whole batch is validated first: one bad line refuses it all (422,
//     problems prefixed "line N: ") and nothing is published.
//   - GET /healthz — 200 while the process serves.
//   - GET /readyz — 200 when [Options.Ready] says so (NATS connected), else 503.
//   - GET /openapi.json — the OpenAPI 3 document of all of these ([OpenAPI]).
//
// # The message body
//
// The body is an envelope (pkg/envelope's JSON schema) with conveniences,
// so a full envelope is accepted as is and a simple one is short:
//
//	{"robot": "ops", "text": "disk full on db-3"}
//	{"robot": "ops", "markdown": {"title": "Deploy", "text": "## done"}, "ttl": "10m"}
//	{"v": 1, "id": "...", "robot": "ops", "message": {"link": {...}}, "created_at": "..."}
//
// "text" (a string) stands for "message": {"text": {"content": ...}} and
// "markdown" for "message": {"markdown": ...}; every other kind goes in
// "message". Exactly one kind must be set in all. "ttl" (a Go duration
// such as "90s" or "10m") sets expires_at to created_at + ttl and excludes
// "expires_at". "at", "labels", "id", "created_at" and "v" are the
// envelope's. What is missing is filled in: v, id ([envelope.NewID]) and
// created_at (now). Unknown fields are refused.
//
// "split": true (POST /v1/messages and POST /v1/fanout; refused in a
// batch) sends a text or markdown message too long for one post (over
// [envelope.MaxContentBytes]) in parts, as [envelope.Split] cuts them:
// ids "<id>.p1", "<id>.p2", … ("<id>.<robot>.p1" in a fan-out), each part
// marked "(i/n)" (a markdown title too), mentions on the last part only,
// stored in order by [publisher.Publisher.PublishSplit]. The response is a
// [MultiResponse] with one result per part; a message that fits is stored
// whole under its id. A robot with security keywords needs its keyword in
// every part: put it in the markdown title, which every part repeats.
// Without "split", a too-long text or markdown message is a 422 whose
// problem suggests it.
//
// An Idempotency-Key header becomes the envelope id (a body id, if any,
// must equal it): the stream drops a second message with the same id
// within its duplicate window (2 minutes by default), so a client that
// retries a POST after a timeout gets 202 with "duplicate": true and
// the message is stored once. A fan-out's copies derive their ids from it,
// so a retried fan-out is deduplicated per robot.
//
// # Bounds
//
// What one request may store is bounded, so that no request can block a
// robot or exhaust the gateway: a stored envelope is at most
// [MaxEnvelopeBytes] encoded (labels included: at most 32, values of at
// most 1024 bytes), so its dead letter always fits a NATS message; a split
// message makes at most [MaxSplitParts] parts, a split fan-out at most
// [MaxFanOutSplit] messages. Answers are bounded too: at most
// [MaxProblems] problems, each at most 256 bytes, never the allow-list;
// a [MultiResponse] of more than [MaxResults] items lists only the failed
// ones.
//
// # Status codes
//
//   - 202 Accepted: stored (or, with "duplicate": true, stored before).
//   - 400: malformed JSON. 413: body over [Options.MaxBodyBytes], or more
//     messages than the token may store in a minute.
//   - 401: missing or wrong bearer token (with WWW-Authenticate).
//   - 403: a robot outside the token's scope (problems name each robot);
//     nothing stored.
//   - 429 with Retry-After: over the token's rate or message quota.
//   - 422: a well-formed request that is not a valid message, or names a
//     robot outside [Options.Robots]; the body is
//     {"error": "invalid message", "problems": ["message.markdown.title: required", ...]},
//     each problem naming the envelope's JSON path of the field at fault
//     (so "text" is reported as message.text.content).
//   - 503 with Retry-After: NATS did not store the message (down, the
//     stream full, or no stream listens for the robot), or the rate limiter
//     (Redis) is unavailable; retry, ideally with an Idempotency-Key.
//   - Fan-out, batch, split and a group: 202 when every item (part) was stored;
//     503 when none was; 502 Bad Gateway when only some were (a split
//     stops at the first part not stored). 502 and 503 carry
//     Retry-After and the per-item results, each stored one with its
//     sequence and each failed one with its error; retrying the same
//     request is safe when the ids are fixed (Idempotency-Key for a
//     fan-out, an "id" per line for a batch): stored items come back as
//     duplicates.
//
// Errors are JSON: {"error": "...", "problems": [...]}.
//
// # Tokens and tenancy
//
// The /v1/ endpoints require "Authorization: Bearer <token>": one of
// [Options.Access] (named, from a tokens file, see [ParseTokens]: a scope
// of robot names and globs, a request rate and a quota of messages per
// minute, shared by all replicas through Redis with a [Limiter]) or of
// [Options.Tokens] (every robot, no rate). Hashes are compared in constant
// time; the gateway keeps no token. Only [Options.NoAuth] serves without
// tokens. The token's name, never the token, is in logs and [Metrics].
// Envelopes carry robot names, never webhooks or secrets; the gateway logs
// a request's id, robot, token name and outcome, never its body.
package gateway
