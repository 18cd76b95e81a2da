package envelope

import (
	"time"
)

// Version is the envelope schema version this package writes and accepts.
const Version = 1

// Envelope is one notification addressed to one configured robot.
//
// The ID is assigned by the producer and is unique per message: it is the
// JetStream Nats-Msg-Id (publish dedup), DingTalk's msgUuid (platform dedup)
// and the key of the worker's idempotency guard.
type Envelope struct {
	// V is the schema version; 0 is read as [Version].
	V int `json:"v"`
	// ID identifies the message; 1–128 characters of [A-Za-z0-9._:-].
	ID string `json:"id"`
	// Robot is the name of a configured robot, never a URL.
	Robot string `json:"robot"`
	// Message holds exactly one message kind.
	Message Message `json:"message"`
	// At lists who is mentioned.
	At *At `json:"at,omitempty"`
	// CreatedAt is when the producer created the message.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt, when set, is the moment after which the message must not be
	// posted: it is dead-lettered as expired instead.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Labels are free-form key/values for routing, search and metrics.
	Labels map[string]string `json:"labels,omitempty"`
	// ReplyTo, on a reply, is the id of the inbound event (a callback,
	// see pkg/inbound) answered; Robot is then the event's app. The
	// worker posts the reply to the event's session webhook until it
	// expires.
	ReplyTo string `json:"reply_to,omitempty"`
}

// Message holds exactly one of its fields.
type Message struct {
	Text       *Text       `json:"text,omitempty"`
	Markdown   *Markdown   `json:"markdown,omitempty"`
	Link       *Link       `json:"link,omitempty"`
	ActionCard *ActionCard `json:"actionCard,omitempty"`
	FeedCard   *FeedCard   `json:"feedCard,omitempty"`
}

// Kind names of the message types, as DingTalk spells its msgtype.
const (
	KindText       = "text"
	KindMarkdown   = "markdown"
	KindLink       = "link"
	KindActionCard = "actionCard"
	KindFeedCard   = "feedCard"
)

// Text is a plain-text message.
type Text struct {
	Content string `json:"content"`
}

// Markdown is a markdown message with a title (shown in notifications).
type Markdown struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// Link is a link card.
type Link struct {
	Title      string `json:"title"`
	Text       string `json:"text"`
	MessageURL string `json:"messageUrl"`
	PicURL     string `json:"picUrl,omitempty"`
}

// ActionCard is a card with either one button (SingleTitle + SingleURL) or
// several (Buttons).
type ActionCard struct {
	Title          string   `json:"title"`
	Text           string   `json:"text"`
	SingleTitle    string   `json:"singleTitle,omitempty"`
	SingleURL      string   `json:"singleURL,omitempty"`
	Buttons        []Button `json:"btns,omitempty"`
	BtnOrientation string   `json:"btnOrientation,omitempty"` // "0" vertical, "1" horizontal
}

// Button is one button of an [ActionCard].
type Button struct {
	Title     string `json:"title"`
	ActionURL string `json:"actionURL"`
}

// FeedCard is a list of links.
type FeedCard struct {
	Links []FeedLink `json:"links"`
}

// FeedLink is one entry of a [FeedCard].
type FeedLink struct {
	Title      string `json:"title"`
	MessageURL string `json:"messageURL"`
	PicURL     string `json:"picURL,omitempty"`
}

// At lists mentions. DingTalk renders a mention only when the mobile or user
// id also appears as "@…" in the content.
type At struct {
	Mobiles []string `json:"mobiles,omitempty"`
	UserIDs []string `json:"userIds,omitempty"`
	All     bool     `json:"all,omitempty"`
}
