package envelope

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// lines returns n lines "line 0001 xxx…\n" of width bytes each.
func lines(n, width int) string {
	var b strings.Builder
	for i := range n {
		l := fmt.Sprintf("line %04d ", i)
		b.WriteString(l + strings.Repeat("x", width-len(l)-1) + "\n")
	}
	return b.String()
}

// body returns the split content of a part: its text or markdown text
// without the marker, which it requires.
func body(t *testing.T, p *Envelope, i, n int) string {
	t.Helper()
	content := ""
	switch p.Message.Kind() {
	case KindText:
		content = p.Message.Text.Content
	case KindMarkdown:
		content = p.Message.Markdown.Text
	}
	suffix := fmt.Sprintf("\n(%d/%d)", i, n)
	require.True(t, strings.HasSuffix(content, suffix), "part %d ends with %q: ...%q", i, suffix, content[max(0, len(content)-20):])
	return strings.TrimSuffix(content, suffix)
}

// checkParts requires the properties every split has: each part valid and
// within limit, ids "<id>.p<i>", the part label, mentions on the last
// part only, and the bodies concatenating to the original.
func checkParts(t *testing.T, orig *Envelope, parts []*Envelope, limit int) {
	t.Helper()
	n := len(parts)
	require.Greater(t, n, 1)
	var all strings.Builder
	for k, p := range parts {
		i := k + 1
		require.NoError(t, p.Validate())
		size := contentSize(p.Message, p.At)
		if p.At != nil { // the "@…" text of the mentions is reserved too
			size += contentSize(Message{}, p.At) - contentSize(Message{}, nil)
		}
		require.LessOrEqual(t, size, limit-FramingReserve, "part %d leaves room for the platform's framing", i)
		require.Equal(t, fmt.Sprintf("%s.p%d", orig.ID, i), p.ID)
		require.Equal(t, orig.Robot, p.Robot)
		require.Equal(t, orig.CreatedAt, p.CreatedAt)
		require.Equal(t, orig.ExpiresAt, p.ExpiresAt)
		require.Equal(t, fmt.Sprintf("%d/%d", i, n), p.Labels[LabelPart])
		for k, v := range orig.Labels {
			require.Equal(t, v, p.Labels[k])
		}
		require.Len(t, p.Labels, len(orig.Labels)+1)
		if i < n {
			require.Nil(t, p.At, "part %d: mentions only on the last part", i)
		} else {
			require.Equal(t, orig.At, p.At)
		}
		b := body(t, p, i, n)
		require.True(t, utf8.ValidString(b), "part %d cut inside a UTF-8 sequence", i)
		all.WriteString(b)
	}
	orig2 := orig.Message.Text
	if orig2 != nil {
		require.Equal(t, orig2.Content, all.String())
	} else {
		require.Equal(t, orig.Message.Markdown.Text, all.String())
	}
}

func TestSplitFits(t *testing.T) {
	tests := []struct {
		name  string
		e     *Envelope
		limit int
	}{
		{"short text", valid(textMsg()), 0},
		{"link", valid(Message{Link: &Link{Title: "t", Text: "x", MessageURL: "https://e.com"}}), 0},
		{"at the default limit", func() *Envelope {
			e := valid(Message{Text: &Text{Content: "x"}})
			e.Message.Text.Content = strings.Repeat("x", MaxContentBytes-FramingReserve-contentSize(e.Message, nil)+1)
			return e
		}(), 0},
		{"at a given limit", func() *Envelope {
			e := valid(Message{Text: &Text{Content: "x"}})
			e.Message.Text.Content = strings.Repeat("x", 500-FramingReserve-contentSize(e.Message, nil)+1)
			return e
		}(), 500},
		{"limit above the maximum means the maximum", valid(Message{Text: &Text{Content: strings.Repeat("x", 19000)}}), 50000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts, err := Split(tt.e, tt.limit)
			require.NoError(t, err)
			require.Len(t, parts, 1)
			require.Same(t, tt.e, parts[0], "an envelope that fits is returned as is")
		})
	}
}

func TestSplit(t *testing.T) {
	at := &At{Mobiles: []string{"13800000000"}, All: true}
	withAt := func(e *Envelope) *Envelope {
		e.At = at
		e.Labels = map[string]string{"team": "db"}
		exp := t0.Add(10 * 60e9)
		e.ExpiresAt = &exp
		return e
	}
	chinese := strings.Repeat("磁盘已满，请立即处理。", 3000) // one line, 3 bytes a character
	tests := []struct {
		name      string
		e         *Envelope
		limit     int
		wantParts int // 0: don't check
	}{
		{"text lines", withAt(valid(Message{Text: &Text{Content: lines(500, 100)}})), 0, 3},
		{"text lines, small limit", valid(Message{Text: &Text{Content: lines(50, 100)}}), 1000, 0},
		{"one long line", valid(Message{Text: &Text{Content: strings.Repeat("abcdefghij", 5000)}}), 0, 3},
		{"one long Chinese line", withAt(valid(Message{Text: &Text{Content: chinese}})), 0, 6},
		{"Chinese lines mixed with a long one", valid(Message{Text: &Text{Content: "告警\n" + chinese[:30000] + "\n结束\n"}}), 10000, 0},
		{"escaped characters count as their JSON", valid(Message{Text: &Text{Content: strings.Repeat("<a&b>\"\t\n", 4000)}}), 0, 0},
		{"markdown", withAt(valid(Message{Markdown: &Markdown{Title: "Nightly report", Text: lines(300, 120)}})), 0, 2},
		{"markdown Chinese, small limit", valid(Message{Markdown: &Markdown{Title: "日报", Text: chinese[:6000]}}), 1000, 0},
		{"more than 9 parts", valid(Message{Text: &Text{Content: lines(200, 60)}}), 1000, 0},
		{"limit above the maximum means the maximum", valid(Message{Text: &Text{Content: lines(250, 100)}}), 50000, 2},
		{"ends without a newline", valid(Message{Text: &Text{Content: strings.TrimSuffix(lines(400, 80), "\n")}}), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.limit
			if limit <= 0 || limit > MaxContentBytes {
				limit = MaxContentBytes
			}
			require.ErrorIs(t, tt.e.problems(Limits{Body: limit})[0], ErrTooLarge, "the test message must not fit")
			parts, err := Split(tt.e, tt.limit)
			require.NoError(t, err)
			if tt.wantParts > 0 {
				require.Len(t, parts, tt.wantParts)
			}
			checkParts(t, tt.e, parts, limit)

			again, err := Split(tt.e, tt.limit)
			require.NoError(t, err)
			require.Equal(t, parts, again, "splitting is deterministic")
		})
	}
}

func TestSplitCutsAtLineEnds(t *testing.T) {
	const limit = 2000
	e := valid(Message{Text: &Text{Content: lines(100, 100)}})
	parts, err := Split(e, limit)
	require.NoError(t, err)
	n := len(parts)
	rest := e.Message.Text.Content
	for k, p := range parts[:n-1] {
		b := body(t, p, k+1, n)
		require.True(t, strings.HasSuffix(b, "\n"), "part %d ends at a line end", k+1)
		rest = strings.TrimPrefix(rest, b)
		// The part is as long as it can be: one more line would not fit.
		next, _, _ := strings.Cut(rest, "\n")
		longer := p.clone()
		longer.Message.Text.Content = b + next + "\n" + fmt.Sprintf("\n(%d/%d)", k+1, n)
		require.Greater(t, contentSize(longer.Message, nil), limit-FramingReserve, "part %d could hold one more line", k+1)
	}
}

func TestSplitMarkdown(t *testing.T) {
	e := valid(Message{Markdown: &Markdown{Title: "Deploy ok", Text: lines(400, 100)}})
	parts, err := Split(e, 0)
	require.NoError(t, err)
	require.Len(t, parts, 3)
	for i, p := range parts {
		require.Equal(t, fmt.Sprintf("Deploy ok (%d/3)", i+1), p.Message.Markdown.Title, "the title is repeated with the marker")
		require.Nil(t, p.Message.Text)
	}
	checkParts(t, e, parts, MaxContentBytes)
	require.Equal(t, "Deploy ok", e.Message.Markdown.Title, "the original is not modified")
}

func TestSplitDoesNotModifyOriginal(t *testing.T) {
	e := valid(Message{Text: &Text{Content: lines(300, 100)}})
	e.At = &At{UserIDs: []string{"u1"}}
	e.Labels = map[string]string{"a": "b"}
	before := e.clone()
	_, err := Split(e, 0)
	require.NoError(t, err)
	require.Equal(t, before, e)
}

func TestSplitRefused(t *testing.T) {
	big := strings.Repeat("x", MaxContentBytes)
	labels := map[string]string{}
	for i := range MaxLabels {
		labels[fmt.Sprintf("k%02d", i)] = "v"
	}
	tests := []struct {
		name     string
		e        *Envelope
		limit    int
		tooLarge bool
		contains string
	}{
		{"link", valid(Message{Link: &Link{Title: "t", Text: big, MessageURL: "https://e.com"}}), 0, true,
			"only text and markdown messages can be split, not link"},
		{"actionCard", valid(Message{ActionCard: &ActionCard{Title: "t", Text: big, SingleTitle: "Open", SingleURL: "https://e.com"}}), 0, true,
			"not actionCard"},
		{"feedCard", valid(Message{FeedCard: &FeedCard{Links: []FeedLink{{Title: big, MessageURL: "https://e.com"}}}}), 0, true,
			"not feedCard"},
		{"title too long for any content", valid(Message{Markdown: &Markdown{Title: strings.Repeat("t", 990), Text: big}}), 1000, true,
			"the title and markers leave no room"},
		{"mentions too long for any content", func() *Envelope {
			e := valid(Message{Text: &Text{Content: big}})
			e.At = &At{UserIDs: []string{strings.Repeat("u", 990)}}
			return e
		}(), 1000, true, "the mentions (at) leave no room"},
		{"other problems are reported, not split", func() *Envelope {
			e := valid(Message{Text: &Text{Content: big}})
			e.Robot = "a.b"
			return e
		}(), 0, true, "robot: invalid character"},
		{"no room for the part label", func() *Envelope {
			e := valid(Message{Text: &Text{Content: big}})
			e.Labels = labels
			return e
		}(), 0, false, "envelope: labels: 32 labels: splitting adds the label botrelay.part, limit 32"},
		{"invalid mentions are reported, not split", func() *Envelope {
			e := valid(Message{Text: &Text{Content: big}})
			e.At = &At{Mobiles: []string{""}}
			return e
		}(), 0, false, "envelope: at.mobiles[0]: required"},
		{"nil", nil, 0, false, "envelope: envelope: nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts, err := Split(tt.e, tt.limit)
			require.Nil(t, parts)
			require.ErrorIs(t, err, ErrInvalid)
			if tt.tooLarge {
				require.ErrorIs(t, err, ErrTooLarge)
			}
			require.ErrorContains(t, err, tt.contains)
			errs := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			for _, e := range errs {
				require.IsType(t, &FieldError{}, e, "Split's errors are field errors")
			}
		})
	}
}

func TestSplitLongID(t *testing.T) {
	e := valid(Message{Text: &Text{Content: lines(300, 100)}})
	e.ID = strings.Repeat("i", MaxIDLen)
	parts, err := Split(e, 0)
	require.NoError(t, err)
	require.Len(t, parts, 2)
	require.NotEqual(t, parts[0].ID, parts[1].ID)
	for _, p := range parts {
		require.Len(t, p.ID, MaxIDLen)
		require.NoError(t, p.Validate())
	}
}
