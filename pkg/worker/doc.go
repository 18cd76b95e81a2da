// Package worker pulls envelopes from JetStream and delivers them to robots.
//
// Each configured robot has a lane: a goroutine fetching from the robot's
// durable consumer (MaxAckPending 1, shared by all workers; see pkg/stream).
// For every message the lane decodes and checks it, waits for a slot from the
// [limiter.Limiter], delivers it through a [Sender] with a bounded number of
// HTTP requests in flight per worker, and maps the outcome to one queue
// action — in one place, the worker's settle method.
//
// Waiting holds no delivery slot and is never an attempt. A short wait (up to
// Config.HoldMax, 10s) is slept through while the lane holds the message and
// heartbeats; a longer one (a full window, a ban cool-off) hands the message
// back to JetStream with a delayed redelivery at the slot, plus jitter. Either
// way the message stays the robot's one pending message, so the robot's later
// messages wait behind it and no other robot is affected. Outcomes:
//
//	success    → record delivered in the ledger, ack
//	throttled  → start the robot's cool-off in the limiter, wait, try again
//	retryable  → count the failure in the ledger; NAK with exponential
//	             backoff, or dead-letter once attempts or time are exhausted
//	permanent  → dead-letter, then ack
//
// A dead letter is acknowledged by the dead-letter stream before the original
// is acked, so nothing is lost. Cancelling Run's context drains: lanes stop
// fetching, in-flight deliveries finish and are acked, messages still waiting
// for a rate slot are handed back (NAK) for another worker, and Run returns.
//
// Messages for a robot no worker is configured for are dead-lettered as
// unknown_robot by a periodic sweep. With Config.Presence every worker
// announces the robots it serves, and a robot whose consumer is left behind
// (it was removed from every worker's config) is recognised by nobody
// announcing it, even with a message still pending on that consumer.
package worker
