// Package deadletter defines the dead-letter record, publishes it to the
// dead-letter stream, and lets operators list and replay dead letters.
//
// A record carries the original envelope (or, when it could not be decoded,
// the raw payload), the reason, the delivery class, the platform's errcode
// and errmsg, the number of attempts and the first and last attempt times.
// Records never contain a robot secret or a webhook token: the worker builds
// them from redacted delivery results.
//
// [Publish] deduplicates on the original's subject and sequence, so a
// message dead-lettered twice (a worker died before acking it) leaves one
// record. [List] reads the stream with an ordered consumer, filtered on the
// server to one robot's subject when asked, in batches: one pass however
// large the stream, and it works with nats-server 2.9.
//
// [Replay] publishes a record's envelope again with the dedup id
// "replay:<envelope id>:<dead-letter sequence>". Within the outbound
// stream's duplicate window (two minutes by default) a repeated replay of
// the same record, a double click, stores nothing and gives
// [ErrAlreadyReplayed]; after it the record can be replayed again, and
// [ReplayAgain] replays it at once with a nonce in its id, for an operator
// who means to.
package deadletter
