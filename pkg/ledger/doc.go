// Package ledger remembers, per message (keyed "<robot>/<id>" by the
// worker), what the workers have done with it: how many delivery attempts
// failed (so retries are counted across workers and restarts, and waiting
// for the rate limiter never counts), when the first failure was and how
// long it waited since, how often the platform throttled it, whether it was
// delivered or failed for good, and which worker holds it in flight.
//
// It is the idempotency guard of at-least-once delivery. Immediately before
// every request a worker calls [Ledger.Claim]: a message already delivered
// is acked without posting it again, one that failed for good is only
// dead-lettered again, and one that another worker marked in flight is not
// posted while that worker's lease runs (the lease is at least the time
// that worker may still write its request). A lease that ended without an
// outcome means the holder died, perhaps after the platform took the
// message: the worker applies the robot's on_unknown_outcome policy.
//
// Entries are small hashes with short TTLs ([DefaultTTL] while a message is
// worked on, [DefaultDoneTTL] once delivered), so Redis memory stays
// proportional to the message rate; docs/limiter.md gives the figure.
//
// [Redis] keeps its scripts' Lua sources exported ([ClaimLua],
// [RecordLua]) so that pkg/gate runs the claim and the limiter's decision
// in one script; on a Redis Cluster it stores each entry under its robot's
// limiter key as hash tag ([Redis.WithHashTag]), in the slot of the
// robot's window.
//
// [Presence], implemented by both ledgers, records which robots the running
// workers serve, so a robot removed from every worker's configuration can
// be told from one whose worker is merely busy.
package ledger
