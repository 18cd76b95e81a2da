package delivery

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/botrelay/botrelay/pkg/envelope"
)

// WeCom group robot error codes (PLATFORMS.md).
const (
	WeComErrBusy       = -1
	WeComErrFrequency  = 45009 // "api freq out of limit"
	WeComErrInvalidURL = 93000 // "invalid webhook url", often a full URL pasted as key
	WeComErrTooLong    = 40058 // "markdown.content exceed max length 4096"
)

// WeCom's size rules.
const (
	WeComMaxText     = 2048 // text.content, bytes
	WeComMaxMarkdown = 4096 // markdown.content, bytes
	WeComMaxArticles = 8    // news articles
	weComMaxTitle    = 128  // news title, bytes
	weComMaxDesc     = 512  // news description, bytes
	// template_card text_notice fits a short card only (the documented
	// display lengths, in characters).
	weComMaxCardTitle = 26
	weComMaxCardText  = 112
	weComMaxCardJumps = 3
)

// weComTitleFraming is what a markdown title costs beyond its bytes:
// "**" + title + "**\n".
const weComTitleFraming = 5

// weComPlatform is the WeCom (企业微信) group robot: no signature, the
// key in the URL is the only credential, and no keyword security.
//
// text keeps its mentions in mentioned_list / mentioned_mobile_list;
// markdown carries its title in bold on the first line and mentions as
// <@userid> (mobiles and everyone as plain "@…", which WeCom markdown
// cannot mention); a link is a news message of one article, a feed card
// one of up to 8; an action card is a template_card (text_notice) when it
// fits one (a short title and text, at most 3 buttons), else markdown
// with the buttons as links.
var weComPlatform = Platform{
	Name:         PlatformWeCom,
	Title:        "WeCom",
	Webhook:      "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…",
	CredentialIn: "key query parameter",
	Limits:       []Window{{Max: 20, Window: time.Minute}},
	Margin:       5 * time.Second,
	// No ban is documented (unconfirmed): a short cool-off.
	CoolOff: time.Minute,
	Size: envelope.Limits{Platform: PlatformWeCom, Text: WeComMaxText,
		Markdown: WeComMaxMarkdown - weComTitleFraming, Links: WeComMaxArticles},

	credential: queryCredential("key"),
	render: func(env *envelope.Envelope, robot Robot, _ time.Time) (outgoing, error) {
		b, err := renderWeCom(env)
		return outgoing{url: robot.Webhook, body: b}, err
	},
	keywordText: func(env *envelope.Envelope) (string, error) { return env.Message.PlainText(), nil },
	rules:       weComRules,
	codeFields:  errCodeFields,
	msgFields:   errMsgFields,
}

var weComRules = []Rule{
	{Codes: []int{WeComErrBusy}, Outcome: Retryable, Reason: "system busy"},
	{Codes: []int{WeComErrFrequency}, Outcome: Throttled, Reason: "api freq out of limit"},
	{Codes: []int{WeComErrInvalidURL}, Outcome: Permanent, Reason: "invalid webhook url (a key is expected, not a URL)"},
	{Codes: []int{WeComErrTooLong}, Outcome: Permanent, Reason: "message too long"},
	{Contains: []string{"freq out of limit"}, Outcome: Throttled, Reason: "api freq out of limit"},
	{Contains: []string{"exceed max length"}, Outcome: Permanent, Reason: "message too long"},
}

type weComBody struct {
	MsgType      string             `json:"msgtype"`
	Text         *weComText         `json:"text,omitempty"`
	Markdown     *weComMarkdown     `json:"markdown,omitempty"`
	News         *weComNews         `json:"news,omitempty"`
	TemplateCard *weComTemplateCard `json:"template_card,omitempty"`
}

type weComText struct {
	Content             string   `json:"content"`
	MentionedList       []string `json:"mentioned_list,omitempty"`
	MentionedMobileList []string `json:"mentioned_mobile_list,omitempty"`
}

type weComMarkdown struct {
	Content string `json:"content"`
}

type weComNews struct {
	Articles []weComArticle `json:"articles"`
}

type weComArticle struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	URL         string `json:"url"`
	PicURL      string `json:"picurl,omitempty"`
}

type weComTemplateCard struct {
	CardType     string          `json:"card_type"`
	MainTitle    weComMainTitle  `json:"main_title"`
	SubTitleText string          `json:"sub_title_text,omitempty"`
	JumpList     []weComJump     `json:"jump_list,omitempty"`
	CardAction   weComCardAction `json:"card_action"`
}

type weComMainTitle struct {
	Title string `json:"title"`
}

type weComJump struct {
	Type  int    `json:"type"` // 1: URL
	URL   string `json:"url"`
	Title string `json:"title"`
}

type weComCardAction struct {
	Type int    `json:"type"` // 1: URL
	URL  string `json:"url"`
}

// renderWeCom builds the WeCom body of env; a text or markdown message
// over WeCom's limits is an error matching [ErrTooLong].
func renderWeCom(env *envelope.Envelope) (*weComBody, error) {
	m := env.Message
	switch m.Kind() {
	case envelope.KindText:
		if n := len(m.Text.Content); n > WeComMaxText {
			return nil, fmt.Errorf("%w: text of %d bytes, WeCom accepts %d", ErrTooLong, n, WeComMaxText)
		}
		t := &weComText{Content: m.Text.Content}
		if at := env.At; at != nil {
			t.MentionedList = nonEmpty(at.UserIDs)
			if at.All {
				t.MentionedList = append(t.MentionedList, "@all")
			}
			t.MentionedMobileList = nonEmpty(at.Mobiles)
		}
		return &weComBody{MsgType: "text", Text: t}, nil
	case envelope.KindMarkdown:
		return weComMarkdownBody(m.Markdown.Title, m.Markdown.Text, env.At)
	case envelope.KindLink:
		l := m.Link
		return &weComBody{MsgType: "news", News: &weComNews{Articles: []weComArticle{{
			Title: cutBytes(l.Title, weComMaxTitle), Description: cutBytes(l.Text, weComMaxDesc),
			URL: l.MessageURL, PicURL: l.PicURL,
		}}}}, nil
	case envelope.KindFeedCard:
		links := m.FeedCard.Links
		if len(links) > WeComMaxArticles {
			return nil, fmt.Errorf("%w: %d links, WeCom's news takes 1 to %d", ErrInvalidMessage, len(links), WeComMaxArticles)
		}
		news := &weComNews{}
		for _, l := range links {
			news.Articles = append(news.Articles, weComArticle{Title: cutBytes(l.Title, weComMaxTitle), URL: l.MessageURL, PicURL: l.PicURL})
		}
		return &weComBody{MsgType: "news", News: news}, nil
	case envelope.KindActionCard:
		c := m.ActionCard
		jumps := []weComJump{}
		if c.SingleURL != "" {
			jumps = append(jumps, weComJump{Type: 1, URL: c.SingleURL, Title: c.SingleTitle})
		}
		for _, b := range c.Buttons {
			jumps = append(jumps, weComJump{Type: 1, URL: b.ActionURL, Title: b.Title})
		}
		if utf8.RuneCountInString(c.Title) <= weComMaxCardTitle && utf8.RuneCountInString(c.Text) <= weComMaxCardText &&
			len(jumps) <= weComMaxCardJumps && !hasMentions(env.At) {
			return &weComBody{MsgType: "template_card", TemplateCard: &weComTemplateCard{
				CardType: "text_notice", MainTitle: weComMainTitle{Title: c.Title}, SubTitleText: c.Text,
				JumpList: jumps, CardAction: weComCardAction{Type: 1, URL: jumps[0].URL},
			}}, nil
		}
		text := c.Text
		for _, j := range jumps {
			text += "\n[" + j.Title + "](" + j.URL + ")"
		}
		return weComMarkdownBody(c.Title, text, env.At)
	}
	return nil, fmt.Errorf("%w: set exactly one message kind", ErrInvalidMessage)
}

// weComMarkdownBody renders a titled markdown message with mentions.
func weComMarkdownBody(title, text string, at *envelope.At) (*weComBody, error) {
	content := "**" + title + "**\n" + text
	if at != nil {
		for _, id := range at.UserIDs {
			if id != "" && !strings.Contains(content, "<@"+id+">") {
				content += " <@" + id + ">"
			}
		}
		content = withMobiles(content, at.Mobiles)
		if at.All && !strings.Contains(content, "@all") {
			content += " @all"
		}
	}
	if n := len(content); n > WeComMaxMarkdown {
		return nil, fmt.Errorf("%w: markdown of %d bytes, WeCom accepts %d", ErrTooLong, n, WeComMaxMarkdown)
	}
	return &weComBody{MsgType: "markdown", Markdown: &weComMarkdown{Content: content}}, nil
}

func hasMentions(at *envelope.At) bool {
	return at != nil && (len(at.Mobiles) > 0 || len(at.UserIDs) > 0 || at.All)
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// cutBytes shortens s to at most n bytes, at a character boundary, ending
// with "…" when cut (WeCom cuts news titles and descriptions itself).
func cutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	k := n - len(ell)
	for k > 0 && !utf8.RuneStart(s[k]) {
		k--
	}
	return s[:k] + ell
}
