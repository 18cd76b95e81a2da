package gateway

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/inbound"
)

// replyRobot is the robot placeholder build is given for a reply, whose
// robot (the event's app) is set after the event is found.
const replyRobot = "_reply"

// EventLookup returns the stored inbound event with an id, failing with
// an error matching [inbound.ErrNotFound] when there is none.
// [inbound.Get] bound to a JetStream context and topology is one.
type EventLookup func(ctx context.Context, id string) (*inbound.Event, error)

// postReply stores a reply to an inbound event: an envelope for the
// event's app (its reply robot), with reply_to set, delivered by the
// workers to the event's session webhook. The token's scope is checked
// against the app's name, as for a robot.
func (g *Gateway) postReply(w http.ResponseWriter, r *http.Request) {
	if g.events == nil {
		g.fail(w, r, &requestError{status: http.StatusNotFound, msg: "replies are not enabled on this gateway"})
		return
	}
	req, rerr := g.readRequest(w, r)
	if rerr != nil {
		g.fail(w, r, rerr)
		return
	}
	var problems []string
	if req.Robot != "" || req.Robots != nil {
		problems = append(problems, "robot: not used by a reply (the event's app answers)")
	}
	if req.Split {
		problems = append(problems, "split: not supported for replies")
	}
	if req.ReplyTo == "" {
		problems = append(problems, "reply_to: required, the id of an inbound event")
	}
	env, _, ps := build(req, replyRobot, r.Header.Get(idempotencyKey), g.now(), envelope.Limits{}) // replies go to DingTalk
	if problems = append(problems, ps...); len(problems) > 0 {
		g.fail(w, r, invalid(problems...))
		return
	}
	ev, err := g.events(r.Context(), req.ReplyTo)
	switch {
	case errors.Is(err, inbound.ErrNotFound) || errors.Is(err, inbound.ErrInvalid):
		g.fail(w, r, &requestError{status: http.StatusNotFound, msg: "no such inbound event: " + clip(req.ReplyTo)})
		return
	case err != nil:
		g.log.Warn("inbound event lookup failed", "event", clip(req.ReplyTo), "err", err)
		unavailable(w, http.StatusServiceUnavailable, errorBody{Error: "inbound events unavailable, retry later"})
		return
	}
	if ps := scopeProblems(tokenOf(r), []string{ev.App}, func(int) string { return "reply_to" }); len(ps) > 0 {
		g.fail(w, r, forbidden(ps))
		return
	}
	env.Robot, env.ReplyTo = ev.App, ev.ID
	if req.MentionSender {
		who := ev.SenderStaffID
		if who == "" {
			who = ev.SenderID
		}
		if env.At == nil {
			env.At = &envelope.At{}
		}
		if who != "" && !slices.Contains(env.At.UserIDs, who) {
			env.At.UserIDs = append(env.At.UserIDs, who)
		}
		// DingTalk renders a mention only when "@id" is in the content.
		switch m := env.Message; {
		case m.Text != nil && !strings.Contains(m.Text.Content, "@"+who):
			m.Text.Content = "@" + who + " " + m.Text.Content
		case m.Markdown != nil && !strings.Contains(m.Markdown.Text, "@"+who):
			m.Markdown.Text = "@" + who + " " + m.Markdown.Text
		}
	}
	if err := env.Validate(); err != nil {
		g.fail(w, r, invalid(err.Error()))
		return
	}
	if !g.reserve(w, r, 1) {
		return
	}
	ack, err := g.pub.Publish(r.Context(), env)
	if err != nil {
		g.publishFailed(w, r, env, err)
		return
	}
	g.log.Info("reply accepted", "id", env.ID, "app", env.Robot, "event", ev.ID, "token", tokenName(r), "sequence", ack.Sequence, "duplicate", ack.Duplicate)
	if ack.Duplicate {
		g.refund(r, 1)
	} else {
		g.metrics.storedN(tokenName(r), 1)
	}
	writeJSON(w, http.StatusAccepted, Result{ID: env.ID, Robot: env.Robot, Sequence: ack.Sequence, Duplicate: ack.Duplicate})
}
