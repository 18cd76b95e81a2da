package inbound

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid is matched by the error of a callback body that cannot be
// an event.
var ErrInvalid = errors.New("inbound: invalid callback")

// Event is one verified callback.
type Event struct {
	// ID identifies the event: "<app>.<sequence>" (its position in the
	// inbound stream, see [EventID]); a reply names it. Set when the
	// event is stored or read, not part of the stored body.
	ID string `json:"-"`
	// App is the configured app the callback was sent to.
	App string `json:"app"`
	// MsgID is the platform's message id (the callback's msgId).
	MsgID string `json:"msg_id"`
	// MsgType is the callback's msgtype ("text", …).
	MsgType string `json:"msgtype"`
	// Text is text.content, trimmed (DingTalk starts it with a space
	// after the @-mention).
	Text string `json:"text"`
	// ConversationID and ConversationType ("1" single chat, "2" group)
	// say where it was said.
	ConversationID   string `json:"conversation_id"`
	ConversationType string `json:"conversation_type"`
	ConversationName string `json:"conversation_title,omitempty"`
	// SenderID, SenderNick and SenderStaffID say who said it.
	SenderID      string `json:"sender_id"`
	SenderNick    string `json:"sender_nick,omitempty"`
	SenderStaffID string `json:"sender_staff_id,omitempty"`
	ChatbotUserID string `json:"chatbot_user_id,omitempty"`
	// CreatedAt is the callback's createAt.
	CreatedAt time.Time `json:"created_at"`
	// ReceivedAt is when the gateway verified it.
	ReceivedAt time.Time `json:"received_at"`
	// SessionWebhook is the reply address; a credential, never shown.
	SessionWebhook string `json:"session_webhook"`
	// SessionWebhookExpiresAt is when SessionWebhook stops accepting
	// replies (sessionWebhookExpiredTime).
	SessionWebhookExpiresAt time.Time `json:"session_webhook_expires_at"`
	// Raw is the callback body as received.
	Raw json.RawMessage `json:"raw,omitempty"`
}

// Summary is what may be shown of an [Event]: everything but the session
// webhook and the raw body (which holds it).
type Summary struct {
	ID                      string    `json:"id"`
	App                     string    `json:"app"`
	MsgType                 string    `json:"msgtype"`
	Text                    string    `json:"text"`
	ConversationID          string    `json:"conversation_id"`
	ConversationType        string    `json:"conversation_type"`
	SenderID                string    `json:"sender_id"`
	SenderNick              string    `json:"sender_nick,omitempty"`
	SenderStaffID           string    `json:"sender_staff_id,omitempty"`
	CreatedAt               time.Time `json:"created_at"`
	SessionWebhookExpiresAt time.Time `json:"session_webhook_expires_at"`
}

// Summary returns the shown part of e.
func (e *Event) Summary() Summary {
	return Summary{ID: e.ID, App: e.App, MsgType: e.MsgType, Text: e.Text, ConversationID: e.ConversationID,
		ConversationType: e.ConversationType, SenderID: e.SenderID, SenderNick: e.SenderNick, SenderStaffID: e.SenderStaffID,
		CreatedAt: e.CreatedAt, SessionWebhookExpiresAt: e.SessionWebhookExpiresAt}
}

// dingTalkCallback is the part of a DingTalk callback body botrelay reads.
type dingTalkCallback struct {
	MsgType string `json:"msgtype"`
	Text    struct {
		Content string `json:"content"`
	} `json:"text"`
	MsgID                     string      `json:"msgId"`
	CreateAt                  json.Number `json:"createAt"`
	ConversationType          string      `json:"conversationType"`
	ConversationID            string      `json:"conversationId"`
	ConversationTitle         string      `json:"conversationTitle"`
	SenderID                  string      `json:"senderId"`
	SenderNick                string      `json:"senderNick"`
	SenderStaffID             string      `json:"senderStaffId"`
	ChatbotUserID             string      `json:"chatbotUserId"`
	SessionWebhook            string      `json:"sessionWebhook"`
	SessionWebhookExpiredTime json.Number `json:"sessionWebhookExpiredTime"`
}

// msgIDRE bounds the msgId, which becomes part of the event id and of
// the stream's dedup id.
var msgIDRE = regexp.MustCompile(`^[A-Za-z0-9._:=+/-]{1,200}$`)

// ParseDingTalk makes the event of a (verified) DingTalk callback body
// sent to app, received at now. Errors match [ErrInvalid] and never
// contain the session webhook.
func ParseDingTalk(app string, body []byte, now time.Time) (*Event, error) {
	var cb dingTalkCallback
	if err := json.Unmarshal(body, &cb); err != nil {
		return nil, fmt.Errorf("%w: body is not a JSON object", ErrInvalid)
	}
	var problems []string
	if !msgIDRE.MatchString(cb.MsgID) {
		problems = append(problems, "msgId: required, 1-200 characters of [A-Za-z0-9._:=+/-]")
	}
	if cb.ConversationID == "" {
		problems = append(problems, "conversationId: required")
	}
	if !strings.HasPrefix(cb.SessionWebhook, "https://") && !strings.HasPrefix(cb.SessionWebhook, "http://") {
		problems = append(problems, "sessionWebhook: required, an http(s) URL")
	}
	exp, err := millis(cb.SessionWebhookExpiredTime)
	if err != nil {
		problems = append(problems, "sessionWebhookExpiredTime: required, milliseconds since the epoch")
	}
	created, _ := millis(cb.CreateAt)
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return &Event{
		App: app, MsgID: cb.MsgID, MsgType: cb.MsgType, Text: strings.TrimSpace(cb.Text.Content),
		ConversationID: cb.ConversationID, ConversationType: cb.ConversationType, ConversationName: cb.ConversationTitle,
		SenderID: cb.SenderID, SenderNick: cb.SenderNick, SenderStaffID: cb.SenderStaffID, ChatbotUserID: cb.ChatbotUserID,
		CreatedAt: created, ReceivedAt: now.UTC(), SessionWebhook: cb.SessionWebhook, SessionWebhookExpiresAt: exp,
		Raw: append(json.RawMessage(nil), body...),
	}, nil
}

// EventID is the id of app's event stored at seq in the inbound stream.
func EventID(app string, seq uint64) string { return app + "." + strconv.FormatUint(seq, 10) }

// ParseEventID splits an event id into its app and stream sequence.
func ParseEventID(id string) (app string, seq uint64, err error) {
	i := strings.LastIndexByte(id, '.')
	if i > 0 {
		seq, err = strconv.ParseUint(id[i+1:], 10, 64)
	}
	if i <= 0 || err != nil || seq == 0 {
		return "", 0, fmt.Errorf("%w: event id %q: want <app>.<sequence>", ErrInvalid, id)
	}
	return id[:i], seq, nil
}

func millis(n json.Number) (time.Time, error) {
	ms, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, errors.New("not milliseconds")
	}
	return time.UnixMilli(ms).UTC(), nil
}
