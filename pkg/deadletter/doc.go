// Package deadletter defines the dead-letter record, publishes it to the
// dead-letter stream, and lets operators list and replay dead letters.
//
// A record carries the original envelope (or, when it could not be decoded,
// the raw payload), the reason, the delivery class, the platform's errcode
// and errmsg, the number of attempts and the first and last attempt times.
// Records never contain a robot secret or a webhook token: the worker builds
// them from redacted delivery results.
package deadletter
