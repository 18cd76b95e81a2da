package delivery

import (
	"fmt"
	"strings"
	"time"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/signer"
)

// Feishu/Lark error codes (PLATFORMS.md).
const (
	FeishuErrFrequency    = 11232 // "frequency limited", HTTP 200
	FeishuErrBadRequest   = 9499  // HTTP 400: "too many request", or a malformed body
	FeishuErrSign         = 19021 // sign match fail or timestamp not within one hour
	FeishuErrIPNotAllowed = 19022
	FeishuErrKeywords     = 19024 // "Key Words Not Found"
	FeishuErrToken        = 19001 // incoming webhook access token invalid
	FeishuErrMsgType      = 19002
)

// FeishuMaxBody is the largest Feishu request body, in bytes ("20 KB";
// the smaller reading, 20,000, is taken).
const FeishuMaxBody = 20000

// feishuPlatform is the Feishu (and Lark: open.larksuite.com, same API)
// custom bot.
//
// A markdown message is sent as an interactive card holding one markdown
// element, not as "post" rich text: a card renders the markdown as
// written (headings, bold, lists, links, mentions), while "post" is a
// tree of text/a/at/img tags that markdown would have to be parsed into,
// losing what has no tag. Links and action cards are cards with buttons,
// a feed card is a card listing its links. Card images need an image_key
// from an app upload, which a webhook bot cannot get: pictures are left
// out.
var feishuPlatform = Platform{
	Name:         PlatformFeishu,
	Title:        "Feishu/Lark",
	Webhook:      "https://open.feishu.cn/open-apis/bot/v2/hook/{token}",
	CredentialIn: "hook token in the path",
	Limits:       []Window{{Max: 100, Window: time.Minute}, {Max: 5, Window: time.Second}},
	// A 1s margin keeps the 5-per-second window useful (5 per 2s); the
	// write deadline after a grant is the margin.
	Margin: time.Second,
	// No ban is documented (unconfirmed): a short cool-off.
	CoolOff: time.Minute,
	// Cards and <at> tags frame the content more than DingTalk's JSON.
	Size:     envelope.Limits{Platform: PlatformFeishu, Body: FeishuMaxBody, Reserve: 1024},
	MaxBody:  FeishuMaxBody,
	Signed:   true,
	Keywords: true,

	credential: hookCredential,
	render: func(env *envelope.Envelope, robot Robot, now time.Time) (outgoing, error) {
		b, err := renderFeishu(env)
		if err != nil {
			return outgoing{}, err
		}
		if robot.Secret != "" {
			b.Timestamp, b.Sign = signer.Feishu(robot.Secret, now)
		}
		return outgoing{url: robot.Webhook, body: b}, nil
	},
	keywordText: func(env *envelope.Envelope) (string, error) {
		b, err := renderFeishu(env)
		if err != nil {
			return "", err
		}
		return feishuKeywordText(b), nil
	},
	rules:      feishuRules,
	codeFields: []string{"code", "StatusCode"},
	msgFields:  []string{"msg", "StatusMessage"},
}

var feishuRules = []Rule{
	{Codes: []int{FeishuErrFrequency}, Outcome: Throttled, Reason: "frequency limited"},
	{Codes: []int{FeishuErrBadRequest}, Contains: []string{"too many request"}, Outcome: Throttled, Reason: "too many requests"},
	{Codes: []int{FeishuErrBadRequest}, Outcome: Permanent, Reason: "bad request"},
	{Codes: []int{FeishuErrSign}, Outcome: Permanent, Reason: "sign not match or timestamp not within one hour (check the clock)"},
	{Codes: []int{FeishuErrIPNotAllowed}, Outcome: Permanent, Reason: "ip not allowed"},
	{Codes: []int{FeishuErrKeywords}, Outcome: Permanent, Reason: "keywords not in content"},
	{Codes: []int{FeishuErrToken}, Outcome: Permanent, Reason: "token invalid"},
	{Codes: []int{FeishuErrMsgType}, Outcome: Permanent, Reason: "unsupported msg_type"},
	// Text fallbacks for codes not in the table.
	{Contains: []string{"frequency limited", "too many request"}, Outcome: Throttled, Reason: "frequency limited"},
	{Contains: []string{"key words not found", "keyword"}, Outcome: Permanent, Reason: "keywords not in content"},
	{Contains: []string{"sign match fail"}, Outcome: Permanent, Reason: "sign not match or timestamp not within one hour (check the clock)"},
}

// feishuBody is the JSON of a Feishu custom bot request; timestamp and
// sign only when the robot has a secret.
type feishuBody struct {
	Timestamp string         `json:"timestamp,omitempty"`
	Sign      string         `json:"sign,omitempty"`
	MsgType   string         `json:"msg_type"`
	Content   *feishuContent `json:"content,omitempty"`
	Card      *feishuCard    `json:"card,omitempty"`
}

type feishuContent struct {
	Text string `json:"text"`
}

type feishuCard struct {
	Config   feishuCardConfig `json:"config"`
	Header   *feishuHeader    `json:"header,omitempty"`
	Elements []feishuElement  `json:"elements"`
}

type feishuCardConfig struct {
	WideScreenMode bool `json:"wide_screen_mode"`
}

type feishuHeader struct {
	Title feishuPlainText `json:"title"`
}

type feishuPlainText struct {
	Tag     string `json:"tag"`
	Content string `json:"content"`
}

// feishuElement is a card element: "markdown" (Content), "action"
// (Actions, Layout) or "hr".
type feishuElement struct {
	Tag     string         `json:"tag"`
	Content string         `json:"content,omitempty"`
	Actions []feishuButton `json:"actions,omitempty"`
	Layout  string         `json:"layout,omitempty"`
}

type feishuButton struct {
	Tag  string          `json:"tag"`
	Text feishuPlainText `json:"text"`
	Type string          `json:"type,omitempty"`
	URL  string          `json:"url"`
}

func plainText(s string) feishuPlainText { return feishuPlainText{Tag: "plain_text", Content: s} }

func feishuButtonTo(title, url string, primary bool) feishuButton {
	b := feishuButton{Tag: "button", Text: plainText(title), Type: "default", URL: url}
	if primary {
		b.Type = "primary"
	}
	return b
}

// renderFeishu builds the body of env: text as msg_type text with <at>
// mentions, every other kind as an interactive card.
func renderFeishu(env *envelope.Envelope) (*feishuBody, error) {
	m := env.Message
	card := func(title string, elems ...feishuElement) *feishuBody {
		c := &feishuCard{Config: feishuCardConfig{WideScreenMode: true}, Elements: elems}
		if title != "" {
			c.Header = &feishuHeader{Title: plainText(title)}
		}
		return &feishuBody{MsgType: "interactive", Card: c}
	}
	md := func(s string) feishuElement { return feishuElement{Tag: "markdown", Content: s} }
	switch m.Kind() {
	case envelope.KindText:
		return &feishuBody{MsgType: "text", Content: &feishuContent{Text: feishuTextMentions(m.Text.Content, env.At)}}, nil
	case envelope.KindMarkdown:
		return card(m.Markdown.Title, md(feishuCardMentions(m.Markdown.Text, env.At))), nil
	case envelope.KindLink:
		l := m.Link
		return card(l.Title, md(feishuCardMentions(l.Text, env.At)),
			feishuElement{Tag: "action", Actions: []feishuButton{feishuButtonTo("Open", l.MessageURL, true)}}), nil
	case envelope.KindActionCard:
		c := m.ActionCard
		act := feishuElement{Tag: "action"}
		if c.SingleURL != "" {
			act.Actions = []feishuButton{feishuButtonTo(c.SingleTitle, c.SingleURL, true)}
		}
		for i, b := range c.Buttons {
			act.Actions = append(act.Actions, feishuButtonTo(b.Title, b.ActionURL, i == 0))
		}
		if c.BtnOrientation == "1" {
			act.Layout = "flow" // side by side
		}
		return card(c.Title, md(feishuCardMentions(c.Text, env.At)), act), nil
	case envelope.KindFeedCard:
		var elems []feishuElement
		for i, l := range m.FeedCard.Links {
			if i > 0 {
				elems = append(elems, feishuElement{Tag: "hr"})
			}
			elems = append(elems, md("**["+escapeLinkText(l.Title)+"]("+l.MessageURL+")**"))
		}
		if env.At != nil {
			if at := feishuCardMentions("", env.At); at != "" {
				elems = append(elems, md(strings.TrimSpace(at)))
			}
		}
		return card("", elems...), nil
	}
	return nil, fmt.Errorf("%w: set exactly one message kind", ErrInvalidMessage)
}

// escapeLinkText keeps a title from closing a markdown link early.
func escapeLinkText(s string) string {
	return strings.NewReplacer("[", "\\[", "]", "\\]").Replace(s)
}

// feishuTextMentions appends a text message's mentions: <at user_id="id">id</at>
// for each user id (the platform shows the user's name), <at
// user_id="all">所有人</at> for everyone. Feishu cannot mention by mobile
// number: mobiles are written as plain "@…" text. Mentions already in the
// content are not repeated.
func feishuTextMentions(content string, at *envelope.At) string {
	if at == nil {
		return content
	}
	for _, id := range at.UserIDs {
		if id != "" && !strings.Contains(content, `<at user_id="`+id+`"`) {
			content += ` <at user_id="` + id + `">` + id + `</at>`
		}
	}
	content = withMobiles(content, at.Mobiles)
	if at.All && !strings.Contains(content, `<at user_id="all"`) {
		content += ` <at user_id="all">所有人</at>`
	}
	return content
}

// feishuCardMentions is feishuTextMentions for a card's markdown, whose
// mention syntax is <at id=…></at>.
func feishuCardMentions(content string, at *envelope.At) string {
	if at == nil {
		return content
	}
	for _, id := range at.UserIDs {
		if id != "" && !strings.Contains(content, "<at id="+id+">") {
			content += " <at id=" + id + "></at>"
		}
	}
	content = withMobiles(content, at.Mobiles)
	if at.All && !strings.Contains(content, "<at id=all>") {
		content += " <at id=all></at>"
	}
	return content
}

// withMobiles appends " @mobile" for each mobile not yet written so.
func withMobiles(content string, mobiles []string) string {
	for _, m := range mobiles {
		if m != "" && !strings.Contains(content, "@"+m) {
			content += " @" + m
		}
	}
	return content
}

// feishuKeywordText is the text searched for keywords: the text, or a
// card's title and markdown, not its buttons nor URLs (the narrower view,
// as for DingTalk: the platform's own scope is not documented).
func feishuKeywordText(b *feishuBody) string {
	if b.Content != nil {
		return b.Content.Text
	}
	var parts []string
	if b.Card != nil {
		if b.Card.Header != nil {
			parts = append(parts, b.Card.Header.Title.Content)
		}
		for _, e := range b.Card.Elements {
			if e.Tag == "markdown" {
				parts = append(parts, e.Content)
			}
		}
	}
	return strings.Join(parts, "\n")
}
