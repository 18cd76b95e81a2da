// Package worker pulls envelopes from JetStream and delivers them to robots.
//
// A robot with messages has a lane: a goroutine that, by default, reads
// the first message of the robot's subject still in the outbound stream
// and deletes it once its outcome is recorded (direct.go: no consumer, so
// the server's cost does not grow with the robots; the ledger's claim
// keeps two lanes on one robot from posting a message twice), or, with
// Config.ConsumerLanes, pulls from the robot's durable consumer
// (MaxAckPending 1, shared by all workers; see pkg/stream). Either way
// each robot's messages go out one at a time in publish order and no
// robot waits for another. Lanes are lazy, so that a worker's cost follows
// the robots with work, not the size of the fleet (docs/design/fleet.md):
//
//   - the outbound stream announces every stored message, headers only, on
//     the core-NATS subject <prefix>.work.<robot>; each worker subscribes
//     and starts the robot's lane (at most one per robot per worker);
//   - a scan of the stream's per-robot counts (one request, at start,
//     every Config.ScanInterval and after each reconnect) starts the lanes
//     of robots with messages but no lane, so a lost announcement only
//     delays a message;
//   - a consumer lane creates or updates the robot's consumer (with an
//     InactiveThreshold, so the server deletes the consumers of idle
//     robots; recreated, a work-queue consumer starts at the first
//     unacknowledged message), pulls, and stops after Config.LaneIdle
//     without a message, but not before a message it handed back for a
//     delayed redelivery is due. An announcement that arrives while the
//     lane stops keeps it running, so a message published at that moment
//     is served at once;
//   - a lane stops after its current message when its robot is removed by
//     [Worker.Reload] or owned by another worker. A robot whose consumer
//     cannot be created (a server limit) is logged by name, counted in
//     botrelay_unserved_robots and makes [Worker.Healthy] fail, while its
//     lane keeps trying.
//
// For every message the lane starts the heartbeat, decodes and checks it,
// and then, for each request, in this order and with nothing slow between
// the last two steps:
//
//  1. takes one of the write slots of the robot's webhook host
//     (Config.Concurrency per host),
//  2. claims the message in the [ledger.Ledger] (the idempotency check made
//     immediately before every request: delivered, dead-lettered, or in
//     flight at another worker whose lease runs),
//  3. asks the [limiter.Limiter] for a slot,
//  4. writes the request through a [Sender] with a write deadline of
//     reservation + margin: a request that cannot be written in time
//     (a slow dial, TLS handshake or proxy) is abandoned unsent, its slot
//     spent and no attempt counted. The write slot is given back as soon as
//     the request is written.
//
// What becomes of the message is decided in one place, as a value — ack,
// go again, retry after d (an attempt), wait d (not an attempt), or
// dead-letter with a reason — by the policy's before and after methods
// (decide.go, table-tested), and carried out in one place, Worker.apply:
//
//	success    → record delivered in the ledger, ack
//	not sent   → go again with the next slot (the third time in a row: a failed attempt)
//	throttled  → start the robot's cool-off; wait for it (held in the lane when
//	             shorter than HoldMax, else handed back to JetStream); after
//	             MaxThrottles throttles, dead-letter as throttled
//	wait       → the platform's "later" (429, 1111, 90030): wait the requested
//	             delay, capped at the backoff maximum; bounded like throttles
//	retryable  → count the failure; NAK with exponential backoff, or
//	             dead-letter once attempts or time (waits excluded) are spent
//	permanent  → record the outcome in the ledger, dead-letter, then ack
//
// A message whose in-flight lease ended without an outcome was held by a
// worker that died, perhaps after the platform took it: the robot's
// OnUnknownOutcome reposts it (DingTalk drops the repeat by msgUuid) or
// dead-letters it as unknown_outcome. A panic while handling a message
// dead-letters it as panic. Waiting (a rate slot, a cool-off) is never an
// attempt; a short wait (up to Config.HoldMax) is slept through while the
// lane holds the message and heartbeats, a longer one hands it back to
// JetStream with a delayed redelivery. Either way the message stays the
// robot's one pending message, so the robot's later messages wait behind
// it and no other robot is affected.
//
// A dead letter is acknowledged by the dead-letter stream before the original
// is acked, so nothing is lost. Cancelling Run's context drains: lanes stop
// fetching, in-flight deliveries finish and are acked, messages still waiting
// for a rate slot are handed back (NAK) for another worker, and Run returns.
//
// A robot with a [Digest] policy has a lane of its own kind (digest.go):
// it holds its backlog (up to [MaxDigestPending] messages, heartbeating
// them), one worker at a time, and once the robot's budget cannot post the
// waiting messages one by one before each has waited Digest.After, folds
// them into one markdown post ([envelope.FoldDigest]) that goes through
// the same attempt, decisions and Worker.apply as a message, its items
// acked, or dead-lettered (reason digest), together.
//
// Messages for a robot no worker is configured for are dead-lettered as
// unknown_robot by a periodic sweep. With Config.Presence every worker
// announces itself and its robot set (see package ledger), and a robot no
// live worker has configured, seen so by two sweeps in a row, is swept,
// its leftover consumer removed, even with a message still pending on it;
// a robot configured on a live worker is never swept, whether or not it
// has a consumer now. The same registry spreads the robots over the live
// workers that serve them by rendezvous hashing (owner.go).
package worker
