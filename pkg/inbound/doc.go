// Package inbound carries the callbacks of enterprise (two-way) robots:
// the gateway verifies a DingTalk callback, turns it into an [Event] and
// publishes it with [Publish] to the app's subject of the inbound stream
// (stream.Topology.InStream); services consume the events with
// [Subscribe], through a durable consumer per app with explicit acks, so
// an event is never lost while they restart.
//
// An event carries the callback's session webhook, the address replies
// are posted to: it is a credential, kept in the stream and never shown
// ([Event.Summary] leaves it out).
package inbound
