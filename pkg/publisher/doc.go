// Package publisher is the Go API services use to hand messages to botrelay:
// it validates an envelope, publishes it to its robot's subject with the
// envelope id as the JetStream dedup id, and waits for the stream's
// acknowledgement, so a message is either stored durably or the caller gets
// an error.
//
// Every call returns the stream's [Ack] (sequence and duplicate flag) per
// envelope: [Publisher.Publish] for one, [Publisher.PublishAll] for a batch
// and [Publisher.FanOut] for one notification to many robots, the last two
// with a [Result] per envelope plus the joined error of those that failed.
// [Publisher.PublishSplit] publishes a text or markdown message too long for
// one post as parts (see [envelope.Split]), in order. With [WithGroups],
// [Publisher.Send] addresses a robot, a pool or a named group alike (a
// group is expanded into one envelope per member, ids "<id>.<member>").
// A context without a deadline gets a default timeout ([DefaultTimeout],
// or [WithDefaultTimeout]).
package publisher
