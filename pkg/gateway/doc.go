// Package gateway is an HTTP front of [publisher.Publisher] for services
// not written in Go: they POST a JSON message and get back, once the
// JetStream stream has stored it durably, its id and stream sequence.
//
// # Endpoints
//
//   - POST /v1/messages — one message (body below) → 202 with a [Result].
//   - POST /v1/fanout — the same body with "robots": [...] instead of
//     "robot": a copy per robot, with ids "<id>.<robot>" (see
//     [publisher.Publisher.FanOut]) → a [MultiResponse].
//   - POST /v1/messages:batch — NDJSON, one message body per line (each
//     with its robot); blank lines are skipped → a [MultiResponse]. The
//     whole batch is validated first: one bad line refuses it all (422,
//     problems prefixed "line N: ") and nothing is published.
//   - GET /healthz — 200 while the process serves.
//   - GET /readyz — 200 when [Options.Ready] says so (NATS connected), else 503.
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
// # Status codes
//
//   - 202 Accepted: stored (or, with "duplicate": true, stored before).
//   - 400: malformed JSON. 413: body over [Options.MaxBodyBytes].
//   - 401: missing or wrong bearer token (with WWW-Authenticate).
//   - 422: a well-formed request that is not a valid message, or names a
//     robot outside [Options.Robots]; the body is
//     {"error": "invalid message", "problems": ["message.markdown.title: required", ...]},
//     each problem naming the envelope's JSON path of the field at fault
//     (so "text" is reported as message.text.content).
//   - 503 with Retry-After: NATS did not store the message (down, or no
//     stream listens for the robot); retry, ideally with an Idempotency-Key.
//   - Fan-out, batch and split: 202 when every item (part) was stored;
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
// # Security
//
// With [Options.Tokens] set, the /v1/ endpoints require
// "Authorization: Bearer <token>", compared in constant time; without, the
// gateway must only be reachable from trusted networks. Envelopes carry
// robot names, never webhooks or secrets; still, the gateway logs a
// request's id, robot and outcome, never its body.
package gateway
