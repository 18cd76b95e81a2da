package envelope

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"
)

// Limits enforced by [Envelope.Validate].
const (
	// MaxContentBytes is DingTalk's body limit ("message too long, exceed
	// 20000 bytes"). A message is checked against it less [FramingReserve]:
	// the JSON encoding of its Message plus At, with the mentions counted
	// twice (the platforms also want them as "@…" text in the content),
	// must be at most MaxContentBytes − FramingReserve, so that the body a
	// platform adapter builds never exceeds MaxContentBytes.
	MaxContentBytes = 20000
	// FramingReserve is the room left below [MaxContentBytes] for what a
	// platform adds around the content when it is posted: DingTalk's
	// msgtype and msgUuid (the envelope id, up to [MaxIDLen] bytes) and its
	// longer names for the mention fields.
	FramingReserve = 256
	// MaxIDLen is the longest ID, in bytes.
	MaxIDLen = 128
	// MaxRobotLen is the longest robot name, in bytes.
	MaxRobotLen = 64
	// MaxLabels is the largest number of labels.
	MaxLabels = 32
	// MaxLabelKeyLen is the longest label key, in characters.
	MaxLabelKeyLen = 64
	// MaxLabelValueBytes is the longest label value, in bytes. With
	// [MaxLabels] and [MaxLabelKeyLen] it bounds the labels, and so the
	// whole encoded envelope, to a few tens of KiB: its dead letter always
	// fits a NATS message.
	MaxLabelValueBytes = 1024
)

// Errors returned by [Envelope.Validate]; match them with [errors.Is].
var (
	// ErrInvalid matches every validation error.
	ErrInvalid = errors.New("envelope: invalid")
	// ErrTooLarge matches the error for a message over [MaxContentBytes];
	// that error matches [ErrInvalid] too.
	ErrTooLarge = errors.New("envelope: too large")
)

// FieldError is one validation problem: the JSON path of the field at fault
// and what is wrong with it. It matches [ErrInvalid] (and [ErrTooLarge] for
// the size check) with [errors.Is]; use [errors.As] to read the field.
type FieldError struct {
	// Field is the JSON path, e.g. "message.actionCard.btns[1].actionURL".
	Field string
	// Problem says what is wrong, e.g. "required".
	Problem string

	tooLarge bool
}

// Error returns "envelope: <field>: <problem>".
func (e *FieldError) Error() string {
	return "envelope: " + e.Field + ": " + e.Problem
}

// Is reports whether target is [ErrInvalid], or [ErrTooLarge] for a size error.
func (e *FieldError) Is(target error) bool {
	return target == ErrInvalid || (e.tooLarge && target == ErrTooLarge)
}

// problems collects field errors in the order they are found.
type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

func (p *problems) required(field, value string) {
	if strings.TrimSpace(value) == "" {
		p.add(field, "required")
	}
}

// url checks a required URL.
func (p *problems) url(field, value string) {
	if value == "" {
		p.add(field, "required")
		return
	}
	p.optionalURL(field, value)
}

// optionalURL checks a URL that may be empty.
func (p *problems) optionalURL(field, value string) {
	if value == "" {
		return
	}
	u, err := url.Parse(value)
	switch {
	case err != nil:
		p.add(field, "not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		p.add(field, "scheme must be http or https, not %q", u.Scheme)
	case u.Host == "":
		p.add(field, "URL has no host")
	}
}

// Validate checks e against the schema and returns nil or every problem
// found, joined with [errors.Join]. Each problem is a [*FieldError] naming
// the field's JSON path; the result matches [ErrInvalid], and also
// [ErrTooLarge] when the message is over [MaxContentBytes].
//
// Rules: V is 0 or [Version]; ID is 1–[MaxIDLen] characters of
// [A-Za-z0-9._:-]; Robot is 1–[MaxRobotLen] characters of [A-Za-z0-9_-] (it
// becomes a NATS subject token); exactly one message kind is set, with its
// required fields; URLs are absolute http or https URLs; CreatedAt is set and
// ExpiresAt, when set, is after it; at most [MaxLabels] labels with keys of
// 1–[MaxLabelKeyLen] characters and values of at most [MaxLabelValueBytes]
// bytes.
func (e *Envelope) Validate() error {
	if e == nil {
		return &FieldError{Field: "envelope", Problem: "nil"}
	}
	return errors.Join(e.problems(Limits{})...)
}

// ValidateFor is [Envelope.Validate] with the size rules of one platform
// instead of DingTalk's: the body limit l.Body less l.Reserve, and l's
// rules for text, markdown and feed cards when set (WeCom's text is at
// most 2,048 bytes, for example). A message over one of them gives an
// error matching [ErrTooLarge], except a feed card with too many links,
// which [Split] could not help. Producers call it, or [SplitFor], with
// the Limits of the platform of the robot a message is addressed to.
func (e *Envelope) ValidateFor(l Limits) error {
	if e == nil {
		return &FieldError{Field: "envelope", Problem: "nil"}
	}
	return errors.Join(e.problems(l)...)
}

// problems returns every problem of e, checking the message's size against
// l (see [Envelope.ValidateFor]).
func (e *Envelope) problems(l Limits) problems {
	var p problems
	if e.V != 0 && e.V != Version {
		p.add("v", "unsupported version %d (this build knows %d)", e.V, Version)
	}
	checkToken(&p, "id", e.ID, MaxIDLen, isIDByte, "A-Za-z0-9._:-")
	checkToken(&p, "robot", e.Robot, MaxRobotLen, isRobotByte, "A-Za-z0-9_-")
	e.Message.validate(&p)
	e.At.validate(&p)
	if e.CreatedAt.IsZero() {
		p.add("created_at", "required")
	}
	if e.ExpiresAt != nil && !e.CreatedAt.IsZero() && !e.ExpiresAt.After(e.CreatedAt) {
		p.add("expires_at", "must be after created_at")
	}
	validateLabels(&p, e.Labels)
	if err := countProblem(e.Message, l); err != nil {
		p = append(p, err)
	}
	if err := sizeProblem(e.Message, e.At, l); err != nil {
		p = append(p, err)
	} else if err := kindProblem(e.Message, e.At, l); err != nil {
		p = append(p, err)
	}
	return p
}

// sizeProblem returns the [ErrTooLarge] problem of a message whose
// [postedSize] is over l's budget (Body − Reserve), nil when it fits.
func sizeProblem(m Message, a *At, l Limits) error {
	if n, max := postedSize(m, a), l.budget(); n > max {
		return &FieldError{
			Field: "message",
			Problem: fmt.Sprintf("too large%s: %d bytes (content and mentions), limit %d (%d less %d for the platform's framing)",
				l.on(), n, max, l.body(), l.reserve()),
			tooLarge: true,
		}
	}
	return nil
}

// postedSize is what the size check counts: [contentSize] plus the
// mentions once more, for the "@…" text the platforms need in the content
// (at most as long as the mentions' JSON).
func postedSize(m Message, a *At) int {
	return contentSize(m, a) + mentionSize(a)
}

// mentionSize is the length of a's JSON encoding, 0 without mentions.
func mentionSize(a *At) int {
	return contentSize(Message{}, a) - contentSize(Message{}, nil)
}

func checkToken(p *problems, field, v string, maxLen int, ok func(byte) bool, class string) {
	switch {
	case v == "":
		p.add(field, "required")
		return
	case len(v) > maxLen:
		p.add(field, "%d characters, limit %d", len(v), maxLen)
	}
	for i := 0; i < len(v); i++ {
		if !ok(v[i]) {
			p.add(field, "invalid character at offset %d: only [%s] allowed", i, class)
			return
		}
	}
}

func isRobotByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func isIDByte(c byte) bool {
	return isRobotByte(c) || c == '.' || c == ':'
}

// kinds lists the JSON names of the kinds set in m, in declaration order.
func (m Message) kinds() []string {
	var ks []string
	if m.Text != nil {
		ks = append(ks, KindText)
	}
	if m.Markdown != nil {
		ks = append(ks, KindMarkdown)
	}
	if m.Link != nil {
		ks = append(ks, KindLink)
	}
	if m.ActionCard != nil {
		ks = append(ks, KindActionCard)
	}
	if m.FeedCard != nil {
		ks = append(ks, KindFeedCard)
	}
	return ks
}

// Kind returns the kind of message set in m (one of the Kind constants), or
// "" when none or several are set.
func (m Message) Kind() string {
	if ks := m.kinds(); len(ks) == 1 {
		return ks[0]
	}
	return ""
}

func (m Message) validate(p *problems) {
	switch ks := m.kinds(); len(ks) {
	case 0:
		p.add("message", "no message kind set: set exactly one of %s, %s, %s, %s, %s",
			KindText, KindMarkdown, KindLink, KindActionCard, KindFeedCard)
	case 1:
	default:
		p.add("message", "several message kinds set (%s): set exactly one", strings.Join(ks, ", "))
	}
	if t := m.Text; t != nil {
		p.required("message.text.content", t.Content)
	}
	if md := m.Markdown; md != nil {
		p.required("message.markdown.title", md.Title)
		p.required("message.markdown.text", md.Text)
	}
	if l := m.Link; l != nil {
		p.required("message.link.title", l.Title)
		p.required("message.link.text", l.Text)
		p.url("message.link.messageUrl", l.MessageURL)
		p.optionalURL("message.link.picUrl", l.PicURL)
	}
	if c := m.ActionCard; c != nil {
		c.validate(p)
	}
	if f := m.FeedCard; f != nil {
		if len(f.Links) == 0 {
			p.add("message.feedCard.links", "at least one link required")
		}
		for i, l := range f.Links {
			prefix := fmt.Sprintf("message.feedCard.links[%d].", i)
			p.required(prefix+"title", l.Title)
			p.url(prefix+"messageURL", l.MessageURL)
			p.optionalURL(prefix+"picURL", l.PicURL)
		}
	}
}

func (c *ActionCard) validate(p *problems) {
	const prefix = "message.actionCard."
	p.required(prefix+"title", c.Title)
	p.required(prefix+"text", c.Text)
	single := c.SingleTitle != "" || c.SingleURL != ""
	switch {
	case single && len(c.Buttons) > 0:
		p.add(prefix+"btns", "singleTitle/singleURL and btns are mutually exclusive: set one")
	case single:
		p.required(prefix+"singleTitle", c.SingleTitle)
		p.url(prefix+"singleURL", c.SingleURL)
	case len(c.Buttons) == 0:
		p.add(prefix+"btns", "a button required: set singleTitle+singleURL or at least one of btns")
	}
	for i, b := range c.Buttons {
		bp := fmt.Sprintf("%sbtns[%d].", prefix, i)
		p.required(bp+"title", b.Title)
		p.url(bp+"actionURL", b.ActionURL)
	}
	switch c.BtnOrientation {
	case "", "0", "1":
	default:
		p.add(prefix+"btnOrientation", "must be \"0\" (vertical) or \"1\" (horizontal), not %q", c.BtnOrientation)
	}
}

func (a *At) validate(p *problems) {
	if a == nil {
		return
	}
	for i, m := range a.Mobiles {
		p.required(fmt.Sprintf("at.mobiles[%d]", i), m)
	}
	for i, u := range a.UserIDs {
		p.required(fmt.Sprintf("at.userIds[%d]", i), u)
	}
}

func validateLabels(p *problems, labels map[string]string) {
	if len(labels) > MaxLabels {
		p.add("labels", "%d labels, limit %d", len(labels), MaxLabels)
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		shown := k
		if len(shown) > MaxLabelKeyLen {
			shown = string([]rune(shown)[:MaxLabelKeyLen/2]) + "…"
		}
		field := fmt.Sprintf("labels[%q]", shown)
		switch n := utf8.RuneCountInString(k); {
		case n == 0:
			p.add(field, "empty key")
		case n > MaxLabelKeyLen:
			p.add(field, "key of %d characters, limit %d", n, MaxLabelKeyLen)
		}
		if n := len(labels[k]); n > MaxLabelValueBytes {
			p.add(field, "value of %d bytes, limit %d", n, MaxLabelValueBytes)
		}
	}
}

// contentSize is the length of the JSON encodings of m and a, which is what
// the platforms count against their body limit (give or take the msgtype).
func contentSize(m Message, a *At) int {
	n := 0
	if b, err := json.Marshal(m); err == nil {
		n += len(b)
	}
	if a != nil {
		if b, err := json.Marshal(a); err == nil {
			n += len(b)
		}
	}
	return n
}
