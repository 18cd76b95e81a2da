package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/botrelay/botrelay/pkg/inbound"
	"github.com/botrelay/botrelay/pkg/signer"
)

// App is an enterprise (two-way) robot whose callbacks the gateway takes
// on POST /v1/callbacks/dingtalk/{app}.
type App struct {
	// Name is the {app} of the route.
	Name string
	// Secret is the app secret the callbacks are signed with.
	Secret string
}

// InboundPublisher stores a verified callback's event, returning its
// stream sequence; a repeat of an event already stored gives an error
// matching [inbound.ErrDuplicate]. [inbound.Publish] bound to a JetStream
// context and topology is one.
type InboundPublisher func(ctx context.Context, e *inbound.Event) (uint64, error)

// CallbackResponse is the 200 body of a stored callback.
type CallbackResponse struct {
	// EventID is the id of the inbound event, named by replies.
	EventID  string `json:"event_id"`
	Sequence uint64 `json:"sequence"`
}

// postCallback verifies, stores and answers one DingTalk callback. The
// signature is the authentication: no bearer token is involved. An
// unverified request stores nothing.
func (g *Gateway) postCallback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("app")
	secret, ok := g.apps[name]
	if !ok {
		g.fail(w, r, &requestError{status: http.StatusNotFound, msg: "no such app"})
		return
	}
	data, rerr := readBody(w, r, g.maxBody)
	if rerr != nil {
		g.fail(w, r, rerr)
		return
	}
	now := g.now()
	if err := verifyCallback(secret, r.Header.Get("timestamp"), r.Header.Get("sign"), now); err != nil {
		g.log.Info("callback refused", "app", name, "err", err)
		g.fail(w, r, &requestError{status: http.StatusUnauthorized, msg: "callback signature not verified"})
		return
	}
	ev, err := inbound.ParseDingTalk(name, data, now)
	if err != nil {
		g.fail(w, r, &requestError{status: http.StatusUnprocessableEntity, msg: err.Error()})
		return
	}
	seq, err := g.inbound(r.Context(), ev)
	switch {
	case errors.Is(err, inbound.ErrDuplicate):
		g.fail(w, r, &requestError{status: http.StatusConflict, msg: "callback already taken (same msgId): a replay is refused"})
		return
	case err != nil:
		g.log.Warn("callback not stored", "app", name, "event", ev.ID, "err", err)
		unavailable(w, http.StatusServiceUnavailable, errorBody{Error: "callback not stored, retry later"})
		return
	}
	g.log.Info("callback accepted", "app", name, "event", ev.ID, "sequence", seq)
	writeJSON(w, http.StatusOK, CallbackResponse{EventID: ev.ID, Sequence: seq})
}

// errBadSign is a sign header that is not base64.
var errBadSign = errors.New("gateway: sign is not valid base64")

// verifyCallback checks the timestamp and sign headers of a DingTalk
// callback: both present, the timestamp within an hour of now, the sign
// valid base64 and equal (in constant time) to the app secret's.
func verifyCallback(secret, timestamp, sign string, now time.Time) error {
	if sign != "" {
		if _, err := base64.StdEncoding.Strict().DecodeString(sign); err != nil {
			return errBadSign
		}
	}
	return signer.VerifyDingTalkCallback(secret, timestamp, sign, now)
}
