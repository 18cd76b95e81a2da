package worker

import (
	"context"
	"errors"
	"time"

	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/inbound"
)

// replyLookupRetry is the pause before a reply whose inbound event could
// not be read (NATS trouble) is tried again.
const replyLookupRetry = time.Second

// replyTarget points j, a message of a reply robot ([Robot.Replies]), at
// the session webhook of the inbound event it answers: j.rb becomes a
// copy of the robot whose webhook is the event's session webhook (a
// credential: scrubbed from logs and records like a webhook token), whose
// limiter key is the event's conversation, and j.env expires when the
// session does. It returns false with the action to take when the reply
// cannot be posted: dead letter no_event for an event not stored (or
// another app's), a short wait when the stream could not be read.
func (w *Worker) replyTarget(ctx context.Context, j *job) (action, bool) {
	env := j.env
	if env.ReplyTo == "" {
		return action{verb: doDeadLetter, reason: deadletter.ReasonNoEvent, event: "dead_letter",
			detail: "a message for app " + j.rb.Name + " without reply_to: an app's robot only replies to its events"}, false
	}
	ev, err := inbound.Get(ctx, w.js, w.cfg.Topology, env.ReplyTo)
	switch {
	case errors.Is(err, inbound.ErrNotFound) || errors.Is(err, inbound.ErrInvalid):
		return action{verb: doDeadLetter, reason: deadletter.ReasonNoEvent, event: "dead_letter",
			detail: "inbound event " + env.ReplyTo + " is not stored (never, or removed by age)"}, false
	case err != nil:
		w.log.Warn("cannot read the inbound event of a reply; trying again", "robot", j.rb.Name, "id", env.ID, "event", env.ReplyTo, "err", err)
		return action{verb: doWait, delay: replyLookupRetry, event: "deferred"}, false
	case ev.App != j.rb.Name:
		return action{verb: doDeadLetter, reason: deadletter.ReasonNoEvent, event: "dead_letter",
			detail: "inbound event " + env.ReplyTo + " is app " + ev.App + "'s, not " + j.rb.Name + "'s"}, false
	}
	rb := *j.rb
	rb.Webhook, rb.Secret = ev.SessionWebhook, ""
	rb.LimitKey = "session:" + ev.App + ":" + ev.ConversationID
	j.rb = &rb
	if exp := ev.SessionWebhookExpiresAt; env.ExpiresAt == nil || exp.Before(*env.ExpiresAt) {
		env.ExpiresAt = &exp
	}
	return action{}, true
}
