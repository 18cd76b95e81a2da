// Package ledger remembers, per envelope id, what the workers have done with a
// message: how many delivery attempts failed (so retries are counted across
// workers and restarts, and waiting for the rate limiter never counts), when
// the first attempt was, and whether it was delivered.
//
// It is the idempotency guard of at-least-once delivery: a worker that
// receives a message the ledger already marks delivered acks it without
// posting it again. A worker killed between the platform's answer and
// [Ledger.MarkDelivered] can still post twice; for DingTalk the envelope id is
// sent as msgUuid so the platform drops that duplicate itself.
//
// [Presence], implemented by both ledgers, records which robots the running
// workers serve, so a robot removed from every worker's configuration can
// be told from one whose worker is merely busy.
package ledger
