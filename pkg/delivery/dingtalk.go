package delivery

import (
	"fmt"
	"strings"
	"time"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/signer"
)

// dingTalkPlatform is the DingTalk custom robot.
var dingTalkPlatform = Platform{
	Name:         PlatformDingTalk,
	Title:        "DingTalk",
	Webhook:      "https://oapi.dingtalk.com/robot/send?access_token=…",
	CredentialIn: "access_token query parameter",
	Limits:       []Window{{Max: 20, Window: time.Minute}},
	Margin:       5 * time.Second,
	CoolOff:      10 * time.Minute,
	Size:         envelope.Limits{}, // the envelope's defaults are DingTalk's
	MaxBody:      DingTalkMaxBody,
	Signed:       true,
	Keywords:     true,

	credential: queryCredential("access_token"),
	render: func(env *envelope.Envelope, robot Robot, now time.Time) (outgoing, error) {
		b, err := renderDingTalk(env)
		if err != nil {
			return outgoing{}, err
		}
		target := robot.Webhook
		if robot.Secret != "" {
			target, err = signer.SignDingTalkURL(robot.Webhook, robot.Secret, now)
			if err != nil {
				return outgoing{}, fmt.Errorf("%w: %w", ErrInvalidRobot, err)
			}
		}
		return outgoing{url: target, body: b}, nil
	},
	keywordText: func(env *envelope.Envelope) (string, error) {
		b, err := renderDingTalk(env)
		if err != nil {
			return "", err
		}
		return dingTalkKeywordText(b), nil
	},
	rules:      dingTalkRules,
	codeFields: errCodeFields,
	msgFields:  errMsgFields,
}

// DingTalkMaxBody is the largest DingTalk request body, in bytes (460101
// "message too long, exceed 20000 bytes").
const DingTalkMaxBody = 20000

// dingTalkBody is the JSON DingTalk's custom robot accepts. The field names
// are DingTalk's own; they are spelled out here, not borrowed from the
// envelope's tags, so that the wire format cannot drift with the schema.
type dingTalkBody struct {
	MsgType    string              `json:"msgtype"`
	Text       *dingTalkText       `json:"text,omitempty"`
	Markdown   *dingTalkMarkdown   `json:"markdown,omitempty"`
	Link       *dingTalkLink       `json:"link,omitempty"`
	ActionCard *dingTalkActionCard `json:"actionCard,omitempty"`
	FeedCard   *dingTalkFeedCard   `json:"feedCard,omitempty"`
	At         *dingTalkAt         `json:"at,omitempty"`
	MsgUUID    string              `json:"msgUuid,omitempty"`
}

type dingTalkText struct {
	Content string `json:"content"`
}

type dingTalkMarkdown struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

type dingTalkLink struct {
	Title      string `json:"title"`
	Text       string `json:"text"`
	MessageURL string `json:"messageUrl"`
	PicURL     string `json:"picUrl,omitempty"`
}

type dingTalkActionCard struct {
	Title          string           `json:"title"`
	Text           string           `json:"text"`
	SingleTitle    string           `json:"singleTitle,omitempty"`
	SingleURL      string           `json:"singleURL,omitempty"`
	BtnOrientation string           `json:"btnOrientation,omitempty"`
	Btns           []dingTalkButton `json:"btns,omitempty"`
}

type dingTalkButton struct {
	Title     string `json:"title"`
	ActionURL string `json:"actionURL"`
}

type dingTalkFeedCard struct {
	Links []dingTalkFeedLink `json:"links"`
}

type dingTalkFeedLink struct {
	Title      string `json:"title"`
	MessageURL string `json:"messageURL"`
	PicURL     string `json:"picURL,omitempty"`
}

type dingTalkAt struct {
	AtMobiles []string `json:"atMobiles,omitempty"`
	AtUserIDs []string `json:"atUserIds,omitempty"`
	IsAtAll   bool     `json:"isAtAll"`
}

// renderDingTalk builds the DingTalk body of env: the message kind under
// its msgtype, mentions in "at" and also as "@…" in text and markdown
// content, and msgUuid = env.ID for the platform's dedup.
func renderDingTalk(env *envelope.Envelope) (*dingTalkBody, error) {
	m := env.Message
	kind := m.Kind()
	b := &dingTalkBody{MsgType: kind, MsgUUID: env.ID, At: dingTalkMentions(env.At)}
	switch kind {
	case envelope.KindText:
		b.Text = &dingTalkText{Content: withMentions(m.Text.Content, env.At, " ")}
	case envelope.KindMarkdown:
		b.Markdown = &dingTalkMarkdown{Title: m.Markdown.Title, Text: withMentions(m.Markdown.Text, env.At, " ")}
	case envelope.KindLink:
		l := m.Link
		b.Link = &dingTalkLink{Title: l.Title, Text: l.Text, MessageURL: l.MessageURL, PicURL: l.PicURL}
	case envelope.KindActionCard:
		c := m.ActionCard
		ac := &dingTalkActionCard{
			Title: c.Title, Text: c.Text,
			SingleTitle: c.SingleTitle, SingleURL: c.SingleURL,
			BtnOrientation: c.BtnOrientation,
		}
		for _, btn := range c.Buttons {
			ac.Btns = append(ac.Btns, dingTalkButton{Title: btn.Title, ActionURL: btn.ActionURL})
		}
		b.ActionCard = ac
	case envelope.KindFeedCard:
		fc := &dingTalkFeedCard{Links: []dingTalkFeedLink{}}
		for _, l := range m.FeedCard.Links {
			fc.Links = append(fc.Links, dingTalkFeedLink{Title: l.Title, MessageURL: l.MessageURL, PicURL: l.PicURL})
		}
		b.FeedCard = fc
	default:
		return nil, fmt.Errorf("%w: set exactly one message kind", ErrInvalidMessage)
	}
	return b, nil
}

func dingTalkMentions(at *envelope.At) *dingTalkAt {
	if at == nil || len(at.Mobiles) == 0 && len(at.UserIDs) == 0 && !at.All {
		return nil
	}
	return &dingTalkAt{AtMobiles: at.Mobiles, AtUserIDs: at.UserIDs, IsAtAll: at.All}
}

// dingTalkKeywordText is the text DingTalk searches for the robot's
// keywords: the content (with the mentions rendered into it), titles and
// texts, not the URLs.
//
// An actionCard counts its title and text only, not singleTitle nor the
// button titles: whether DingTalk searches those is not documented, and
// the simulator (pkg/robotsim) does not. The pre-check must never pass a
// message the platform may refuse (the refusal spends a rate slot and
// dead-letters the message anyway), so it takes the narrower view; a
// message whose only keyword sits on a button is refused up front.
func dingTalkKeywordText(b *dingTalkBody) string {
	var parts []string
	switch {
	case b.Text != nil:
		parts = append(parts, b.Text.Content)
	case b.Markdown != nil:
		parts = append(parts, b.Markdown.Title, b.Markdown.Text)
	case b.Link != nil:
		parts = append(parts, b.Link.Title, b.Link.Text)
	case b.ActionCard != nil:
		parts = append(parts, b.ActionCard.Title, b.ActionCard.Text)
	case b.FeedCard != nil:
		for _, l := range b.FeedCard.Links {
			parts = append(parts, l.Title)
		}
	}
	return strings.Join(parts, "\n")
}
