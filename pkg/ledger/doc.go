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
// [Presence], implemented by both ledgers, is the registry of the running
// workers: each announces itself (an id and the [Digest] of its robot set)
// with a TTL, and a robot set is stored once per digest and kept in memory
// by the workers that read it, so announcing costs two Redis round trips
// whatever the number of robots. From a [Members] view a worker tells a
// robot removed from every worker's configuration from one whose worker
// is merely busy or has no consumer yet, spreads the robots among the
// workers that serve them, and "producer status" learns which robots a
// worker cannot serve because a limit was reached. Its keys are cluster
// safe: the registry is one hash, and each set is written under its own
// hash tag.
package ledger
