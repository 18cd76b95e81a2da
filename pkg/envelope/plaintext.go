package envelope

import "strings"

// PlainText renders m as readable plain text, for platforms that take only
// text (POPO) and for keyword checks:
//
//   - text: the content;
//   - markdown: title, a newline, the text (markdown left as is);
//   - link: title, text and URL, one per line;
//   - actionCard: title, text, then a "title: url" line per button;
//   - feedCard: a "title url" line per link.
//
// Empty parts are left out. It returns "" when m has no kind or several.
func (m Message) PlainText() string {
	switch m.Kind() {
	case KindText:
		return m.Text.Content
	case KindMarkdown:
		return joinLines(m.Markdown.Title, m.Markdown.Text)
	case KindLink:
		return joinLines(m.Link.Title, m.Link.Text, m.Link.MessageURL)
	case KindActionCard:
		c := m.ActionCard
		lines := []string{c.Title, c.Text}
		if c.SingleTitle != "" || c.SingleURL != "" {
			lines = append(lines, button(c.SingleTitle, c.SingleURL))
		}
		for _, b := range c.Buttons {
			lines = append(lines, button(b.Title, b.ActionURL))
		}
		return joinLines(lines...)
	case KindFeedCard:
		lines := make([]string, 0, len(m.FeedCard.Links))
		for _, l := range m.FeedCard.Links {
			lines = append(lines, strings.TrimSpace(l.Title+" "+l.MessageURL))
		}
		return joinLines(lines...)
	}
	return ""
}

func button(title, url string) string {
	switch {
	case title == "":
		return url
	case url == "":
		return title
	}
	return title + ": " + url
}

// joinLines joins the non-empty parts with newlines.
func joinLines(parts ...string) string {
	var b strings.Builder
	for _, s := range parts {
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(s)
	}
	return b.String()
}
