package envelope

import (
	"fmt"
)

// Limits are one platform's size rules, as the envelope's checks measure
// them ([Envelope.ValidateFor], [SplitFor]). The zero Limits is
// DingTalk's: a body of [MaxContentBytes] less [FramingReserve], with no
// rule of its own for text, markdown or feed cards. Platform descriptions
// (pkg/delivery's Platform) hold the Limits of each platform, so that a
// producer refuses, or splits, a message for the robot it is addressed to.
type Limits struct {
	// Platform names the platform in error messages ("wecom"); "" for
	// the default.
	Platform string
	// Body is the platform's body limit: the JSON encoding of the message
	// and its mentions, the mentions counted twice, must be at most
	// Body − Reserve. 0, or more than [MaxContentBytes], means
	// [MaxContentBytes].
	Body int
	// Reserve is the room left below Body for what the platform adapter
	// adds around the content; 0 means [FramingReserve].
	Reserve int
	// Text, when positive, bounds a text message's content, in bytes
	// (WeCom: 2,048).
	Text int
	// Markdown, when positive, bounds a markdown message, in bytes, as
	// [MarkdownSize] counts it (WeCom: 4,096 less the title's framing).
	Markdown int
	// Links, when positive, bounds the number of links of a feed card
	// (WeCom's news: 8).
	Links int
}

func (l Limits) body() int {
	if l.Body <= 0 || l.Body > MaxContentBytes {
		return MaxContentBytes
	}
	return l.Body
}

func (l Limits) reserve() int {
	if l.Reserve <= 0 {
		return FramingReserve
	}
	return min(l.Reserve, l.body())
}

// budget is what the message and mentions may take: Body − Reserve.
func (l Limits) budget() int { return l.body() - l.reserve() }

func (l Limits) on() string {
	if l.Platform == "" {
		return ""
	}
	return " for " + l.Platform
}

// MarkdownSize is what [Limits.Markdown] bounds: the title's and the
// text's bytes plus, for each mentioned mobile and user id not already
// written "@id" in the text, the id's length plus 4 (a rendered mention
// such as " <@id>"), plus 5 for a mention of everyone (" @all").
func MarkdownSize(md *Markdown, a *At) int {
	if md == nil {
		return 0
	}
	return len(md.Title) + len(md.Text) + mentionTextSize(a)
}

// mentionTextSize is the room the rendered mentions may take in a text.
func mentionTextSize(a *At) int {
	if a == nil {
		return 0
	}
	n := 0
	for _, ids := range [][]string{a.Mobiles, a.UserIDs} {
		for _, id := range ids {
			n += len(id) + 4
		}
	}
	if a.All {
		n += 5
	}
	return n
}

// kindProblem returns the [ErrTooLarge] problem of a message over one of
// l's per-kind rules (text, markdown), nil when it fits them.
func kindProblem(m Message, a *At, l Limits) error {
	tooLarge := func(field string, n, max int) error {
		return &FieldError{Field: field, tooLarge: true,
			Problem: fmt.Sprintf("too large%s: %d bytes, limit %d", l.on(), n, max)}
	}
	switch {
	case m.Text != nil && l.Text > 0 && len(m.Text.Content) > l.Text:
		return tooLarge("message.text.content", len(m.Text.Content), l.Text)
	case m.Markdown != nil && l.Markdown > 0 && MarkdownSize(m.Markdown, a) > l.Markdown:
		return tooLarge("message.markdown", MarkdownSize(m.Markdown, a), l.Markdown)
	}
	return nil
}

// countProblem returns the problem of a feed card with more links than l
// allows; a count is not a size, so it does not match [ErrTooLarge].
func countProblem(m Message, l Limits) error {
	if m.FeedCard != nil && l.Links > 0 && len(m.FeedCard.Links) > l.Links {
		return &FieldError{Field: "message.feedCard.links",
			Problem: fmt.Sprintf("%d links, limit %d%s", len(m.FeedCard.Links), l.Links, l.on())}
	}
	return nil
}
