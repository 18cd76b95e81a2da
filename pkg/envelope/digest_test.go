package envelope_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/envelope"
)

var digestT0 = time.Date(2026, 3, 1, 9, 14, 2, 0, time.UTC)

func textItem(i int, text string, at *envelope.At, labels map[string]string) envelope.DigestItem {
	return envelope.DigestItem{Key: fmt.Sprintf("alerts/m%d", i), Env: &envelope.Envelope{
		ID: fmt.Sprintf("m%d", i), Robot: "alerts", CreatedAt: digestT0.Add(time.Duration(i) * time.Second),
		Message: envelope.Message{Text: &envelope.Text{Content: text}}, At: at, Labels: labels}}
}

func TestFoldDigest(t *testing.T) {
	link := envelope.DigestItem{Key: "alerts/l", Env: &envelope.Envelope{ID: "l", CreatedAt: digestT0,
		Message: envelope.Message{Link: &envelope.Link{Title: "Deploy done", Text: "x", MessageURL: "https://ci.example/1"}}}}
	card := envelope.DigestItem{Key: "alerts/c", Env: &envelope.Envelope{ID: "c", CreatedAt: digestT0.Add(time.Second),
		Message: envelope.Message{ActionCard: &envelope.ActionCard{Title: "Approve", Text: "y",
			Buttons: []envelope.Button{{Title: "ok", ActionURL: "https://ci.example/ok"}, {Title: "no", ActionURL: "https://ci.example/no"}}}}}}
	md := envelope.DigestItem{Key: "alerts/md", Env: &envelope.Envelope{ID: "md", CreatedAt: digestT0.Add(98 * time.Second),
		Message: envelope.Message{Markdown: &envelope.Markdown{Title: "CPU high", Text: "## CPU\nbody"}}}}
	long := strings.Repeat("长", 400) // 1,200 bytes
	many := make([]envelope.DigestItem, 200)
	for i := range many {
		many[i] = textItem(i, long, nil, nil)
	}
	tests := []struct {
		name      string
		items     []envelope.DigestItem
		opts      envelope.DigestOptions
		wantN     int
		wantTitle string
		wantLines []string // the entries, in order
		wantAt    *envelope.At
	}{
		{name: "texts with labels, first line only",
			items: []envelope.DigestItem{textItem(0, "disk full\nsecond line", nil, map[string]string{"sev": "crit", "host": "db1"}),
				textItem(3, "\n  cpu high  ", nil, nil)},
			opts:      envelope.DigestOptions{Robot: "alerts", Title: "告警 digest"},
			wantN:     2,
			wantTitle: "告警 digest: 2 messages, 09:14:02–09:14:05",
			wantLines: []string{"- 09:14:02 disk full `host=db1` `sev=crit`", "- 09:14:05 cpu high"}},
		{name: "links and cards fold as title and URL, markdown as its title",
			items:     []envelope.DigestItem{link, card, md},
			opts:      envelope.DigestOptions{Robot: "alerts"},
			wantN:     3,
			wantTitle: "Digest: 3 messages, 09:14:02–09:15:40",
			wantLines: []string{"- 09:14:02 [Deploy done](https://ci.example/1)", "- 09:14:03 [Approve](https://ci.example/ok)", "- 09:15:40 CPU high"}},
		{name: "mentions are the union, all if any",
			items: []envelope.DigestItem{textItem(0, "a", &envelope.At{Mobiles: []string{"138"}}, nil),
				textItem(1, "b", &envelope.At{Mobiles: []string{"138", "139"}, UserIDs: []string{"u1"}}, nil),
				textItem(2, "c", &envelope.At{All: true}, nil), textItem(3, "d", nil, nil)},
			opts:      envelope.DigestOptions{Robot: "alerts"},
			wantN:     4,
			wantTitle: "Digest: 4 messages, 09:14:02–09:14:05",
			wantLines: []string{"- 09:14:02 a", "- 09:14:03 b", "- 09:14:04 c", "- 09:14:05 d"},
			wantAt:    &envelope.At{Mobiles: []string{"138", "139"}, UserIDs: []string{"u1"}, All: true}},
		{name: "max_items", items: many[:10], opts: envelope.DigestOptions{Robot: "alerts", MaxItems: 4}, wantN: 4,
			wantTitle: "Digest: 4 messages, 09:14:02–09:14:05"},
		{name: "size: only what fits DingTalk's 20,000 bytes", items: many, opts: envelope.DigestOptions{Robot: "alerts"}, wantN: 62}, // (19,744 − the head) / 315-byte entries
		{name: "size: WeCom's markdown limit", items: many,
			opts: envelope.DigestOptions{Robot: "alerts", Limits: envelope.Limits{Platform: "wecom", Body: 20000, Markdown: 4096 - 32}}, wantN: 12},
		{name: "nothing", opts: envelope.DigestOptions{Robot: "alerts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, n := envelope.FoldDigest(tt.items, tt.opts)
			require.Equal(t, tt.wantN, n)
			if n == 0 {
				require.Nil(t, env)
				return
			}
			require.NoError(t, env.ValidateFor(tt.opts.Limits), "the digest keeps the platform's size rules")
			require.NotNil(t, env.Message.Markdown)
			keys := make([]string, n)
			for i := range n {
				keys[i] = tt.items[i].Key
			}
			require.Equal(t, envelope.DigestID(keys), env.ID)
			require.Equal(t, tt.opts.Robot, env.Robot)
			require.Equal(t, tt.items[n-1].Env.CreatedAt, env.CreatedAt, "times come from the items, not the clock")
			if tt.wantTitle != "" {
				require.Equal(t, tt.wantTitle, env.Message.Markdown.Title)
				require.True(t, strings.HasPrefix(env.Message.Markdown.Text, "#### "+tt.wantTitle+"\n\n"))
			}
			lines := strings.Split(env.Message.Markdown.Text, "\n")[2:]
			require.Len(t, lines, n, "one entry per item")
			if tt.wantLines != nil {
				require.Equal(t, tt.wantLines, lines)
			}
			require.Equal(t, tt.wantAt, env.At)
			if n < len(tt.items) && tt.opts.MaxItems == 0 {
				// Maximal: with one more item offered, the same digest.
				next, n2 := envelope.FoldDigest(tt.items[:n+1], tt.opts)
				require.Equal(t, n, n2, "one more item does not fit")
				require.Equal(t, env.ID, next.ID)
			}
			again, n2 := envelope.FoldDigest(tt.items, tt.opts)
			require.Equal(t, n, n2)
			require.Equal(t, env, again, "deterministic")
		})
	}
}

func TestFoldDigestNothingLost(t *testing.T) {
	// Folding what is left, digest after digest, posts every item exactly
	// once and in order, each digest within the limit.
	items := make([]envelope.DigestItem, 500)
	for i := range items {
		items[i] = textItem(i, fmt.Sprintf("item-%03d %s", i, strings.Repeat("x", i%300)), nil, nil)
	}
	var seen []string
	for rest := items; len(rest) > 0; {
		env, n := envelope.FoldDigest(rest, envelope.DigestOptions{Robot: "alerts"})
		require.Positive(t, n)
		require.NoError(t, env.ValidateFor(envelope.Limits{}))
		for _, l := range strings.Split(env.Message.Markdown.Text, "\n")[2:] {
			seen = append(seen, strings.Fields(l)[2])
		}
		rest = rest[n:]
	}
	require.Len(t, seen, len(items))
	for i, s := range seen {
		require.Equal(t, fmt.Sprintf("item-%03d", i), s)
	}
}

func ExampleFoldDigest() {
	t0 := time.Date(2026, 3, 1, 9, 14, 2, 0, time.UTC)
	var items []envelope.DigestItem
	for i, text := range []string{"disk full on db1", "cpu high on web3"} {
		items = append(items, envelope.DigestItem{Key: fmt.Sprintf("alerts/%d", i), Env: &envelope.Envelope{
			ID: fmt.Sprint(i), Robot: "alerts", CreatedAt: t0.Add(time.Duration(i) * 98 * time.Second),
			Message: envelope.Message{Text: &envelope.Text{Content: text}}, Labels: map[string]string{"sev": "crit"}}})
	}
	env, n := envelope.FoldDigest(items, envelope.DigestOptions{Robot: "alerts", Title: "告警 digest"})
	fmt.Println(n, env.Message.Markdown.Title)
	fmt.Println(env.Message.Markdown.Text)
	// Output:
	// 2 告警 digest: 2 messages, 09:14:02–09:15:40
	// #### 告警 digest: 2 messages, 09:14:02–09:15:40
	//
	// - 09:14:02 disk full on db1 `sev=crit`
	// - 09:15:40 cpu high on web3 `sev=crit`
}
