// Package envelope defines the JSON envelope producers publish and workers
// consume: one notification addressed to one configured robot.
//
// The package promises:
//
//   - [Decode] is strict: unknown fields, trailing data and schema versions
//     newer than [Version] are rejected (errors match [ErrDecode]), and every
//     decoded envelope has passed [Envelope.Validate].
//   - [Envelope.Validate] reports every problem at once, each naming the JSON
//     path of the field at fault (for example
//     "envelope: message.markdown.title: required"); the joined error matches
//     [ErrInvalid], and an over-long message also matches [ErrTooLarge].
//   - [Encode] never writes an envelope that [Decode] would refuse.
//   - An envelope carries a robot name, never a webhook URL or a secret, so
//     envelopes and their errors are safe to log.
//
// [New] builds an envelope with a fresh random ID and the current time;
// [Envelope.ForRobot] derives a copy for fan-out to another robot with a
// deterministic ID, so that retrying a fan-out produces the same IDs and the
// deduplication by ID (JetStream Nats-Msg-Id, DingTalk msgUuid) still works.
//
// [Split] cuts a text or markdown message over the size limit into parts
// that fit, each marked "(i/n)", with deterministic IDs "<id>.p<i>" and the
// mentions on the last part only; publish the parts in order.
package envelope
