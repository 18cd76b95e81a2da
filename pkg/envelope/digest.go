package envelope

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// DigestItem is one message folded into a digest.
type DigestItem struct {
	// Key identifies the item (the worker uses its ledger key); a digest's
	// id is a hash of its items' keys, in order ([DigestID]).
	Key string
	// Env is the item's envelope.
	Env *Envelope
}

// DigestOptions shape a digest ([FoldDigest]).
type DigestOptions struct {
	// Robot addresses the digest envelope.
	Robot string
	// Title heads the digest ("Digest" when empty); the count and the time
	// span follow it.
	Title string
	// MaxItems bounds the items of one digest; 0: as many as fit Limits.
	MaxItems int
	// Limits are the platform's size rules the digest must keep.
	Limits Limits
}

// DefaultDigestTitle heads a digest whose options name no title.
const DefaultDigestTitle = "Digest"

// maxEntryLine bounds the bytes of an item's line (its title or first
// line) in a digest entry.
const maxEntryLine = 300

// DigestID is the id of the digest folding the items with keys, in order:
// "digest-" and 32 hex digits of their SHA-256, so the same items always
// make the same digest (and DingTalk's msgUuid drops a repeat).
func DigestID(keys []string) string {
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
	}
	return "digest-" + hex.EncodeToString(h.Sum(nil))[:32]
}

// FoldDigest folds the longest prefix of items that fits o.Limits (and
// o.MaxItems) into one markdown envelope and returns it with the number of
// items folded; the rest are for the next digest, none is cut short. The
// title carries the count and the span of the items' CreatedAt
// ("Digest: 37 messages, 09:14:02–09:15:40"); each item is one entry: its
// time, its title or first line (links and cards as a link to their
// URL), and its labels. The mentions are the union of the items'. The
// result is a function of the items and the options only: no clock is
// read. It returns nil, 0 when items is empty or not even the first item
// fits (a title longer than the platform allows).
func FoldDigest(items []DigestItem, o DigestOptions) (*Envelope, int) {
	if o.MaxItems > 0 && len(items) > o.MaxItems {
		items = items[:o.MaxItems]
	}
	if len(items) == 0 {
		return nil, 0
	}
	title := o.Title
	if title == "" {
		title = DefaultDigestTitle
	}
	entries := make([]string, len(items))
	// An estimate first (each entry's JSON escaping, the head's room
	// allowed for), then exact checks around it: no marshal per prefix.
	budget := o.Limits.budget() - jsonLen("#### "+title+": 0000 messages, 2006-01-02 15:04:05–2006-01-02 15:04:05\n\n")*2 - 64
	n, used := 0, 0
	for i, it := range items {
		entries[i] = digestEntry(it.Env)
		used += jsonLen(entries[i]) + 2
		if used > budget && n > 0 {
			break
		}
		n = i + 1
	}
	valid := func(k int) (*Envelope, bool) {
		if entries[k-1] == "" {
			entries[k-1] = digestEntry(items[k-1].Env)
		}
		env := digestEnvelope(items[:k], entries[:k], title, o.Robot)
		return env, env.ValidateFor(o.Limits) == nil
	}
	for n < len(items) {
		if _, ok := valid(n + 1); !ok {
			break
		}
		n++
	}
	for ; n > 0; n-- {
		if env, ok := valid(n); ok {
			return env, n
		}
	}
	return nil, 0
}

// jsonLen is the length of s's JSON string encoding, quotes excluded.
func jsonLen(s string) int {
	b, _ := json.Marshal(s)
	return len(b) - 2
}

// digestEnvelope builds the digest of items with their rendered entries.
func digestEnvelope(items []DigestItem, entries []string, title, robot string) *Envelope {
	keys := make([]string, len(items))
	var at *At
	for i, it := range items {
		keys[i] = it.Key
		at = unionAt(at, it.Env.At)
	}
	first, last := items[0].Env.CreatedAt, items[len(items)-1].Env.CreatedAt
	head := fmt.Sprintf("%s: %d messages, %s", title, len(items), digestSpan(first, last))
	if len(items) == 1 {
		head = fmt.Sprintf("%s: 1 message, %s", title, digestTime(first, first))
	}
	text := "#### " + head + "\n\n" + strings.Join(entries, "\n")
	return &Envelope{V: Version, ID: DigestID(keys), Robot: robot, CreatedAt: last, At: at,
		Message: Message{Markdown: &Markdown{Title: head, Text: text}}}
}

// digestSpan is "09:14:02–09:15:40", with dates when the items span days.
func digestSpan(first, last time.Time) string {
	if last.Before(first) {
		first, last = last, first
	}
	return digestTime(first, last) + "–" + digestTime(last, first)
}

// digestTime formats t as a time of day, with its date when other is on
// another day.
func digestTime(t, other time.Time) string {
	if t.Year() != other.Year() || t.YearDay() != other.YearDay() {
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("15:04:05")
}

// digestEntry is one item's line: "- 09:14:02 first line `k=v`".
func digestEntry(e *Envelope) string {
	var b strings.Builder
	b.WriteString("- ")
	b.WriteString(e.CreatedAt.Format("15:04:05"))
	b.WriteString(" ")
	b.WriteString(entryText(e.Message))
	for _, k := range slices.Sorted(maps.Keys(e.Labels)) {
		fmt.Fprintf(&b, " `%s=%s`", oneLine(k, 64), oneLine(e.Labels[k], 128))
	}
	return b.String()
}

// entryText is an item's title or first line; links and cards as
// "[title](url)".
func entryText(m Message) string {
	link := func(title, url string) string {
		title = oneLine(title, maxEntryLine)
		if url == "" {
			return title
		}
		if title == "" {
			title = url
		}
		return "[" + title + "](" + url + ")"
	}
	switch m.Kind() {
	case KindText:
		return oneLine(m.Text.Content, maxEntryLine)
	case KindMarkdown:
		if t := oneLine(m.Markdown.Title, maxEntryLine); t != "" {
			return t
		}
		return oneLine(strings.TrimLeft(m.Markdown.Text, "# "), maxEntryLine)
	case KindLink:
		return link(m.Link.Title, m.Link.MessageURL)
	case KindActionCard:
		c := m.ActionCard
		url := c.SingleURL
		if url == "" && len(c.Buttons) > 0 {
			url = c.Buttons[0].ActionURL
		}
		return link(c.Title, url)
	case KindFeedCard:
		if len(m.FeedCard.Links) == 0 {
			return ""
		}
		l := m.FeedCard.Links[0]
		s := link(l.Title, l.MessageURL)
		if more := len(m.FeedCard.Links) - 1; more > 0 {
			s += fmt.Sprintf(" (+%d more)", more)
		}
		return s
	}
	return ""
}

// oneLine is the first non-empty line of s, at most max bytes (cut at a
// rune boundary, marked "…").
func oneLine(s string, max int) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			s = l
			break
		}
	}
	s = strings.TrimSpace(strings.SplitN(s, "\n", 2)[0])
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// unionAt merges b's mentions into a (a copy), in first-seen order.
func unionAt(a, b *At) *At {
	if b == nil {
		return a
	}
	out := &At{}
	if a != nil {
		out.All = a.All
		out.Mobiles = slices.Clone(a.Mobiles)
		out.UserIDs = slices.Clone(a.UserIDs)
	}
	out.All = out.All || b.All
	for _, m := range b.Mobiles {
		if !slices.Contains(out.Mobiles, m) {
			out.Mobiles = append(out.Mobiles, m)
		}
	}
	for _, u := range b.UserIDs {
		if !slices.Contains(out.UserIDs, u) {
			out.UserIDs = append(out.UserIDs, u)
		}
	}
	return out
}
