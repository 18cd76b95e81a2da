package envelope

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPlainText(t *testing.T) {
	tests := []struct {
		name string
		m    Message
		want string
	}{
		{"none", Message{}, ""},
		{"several", Message{Text: &Text{Content: "a"}, Markdown: &Markdown{Title: "t", Text: "x"}}, ""},
		{"text", Message{Text: &Text{Content: "disk full\non db1"}}, "disk full\non db1"},
		{"markdown", Message{Markdown: &Markdown{Title: "Deploy", Text: "## done\n- web"}}, "Deploy\n## done\n- web"},
		{"link", Message{Link: &Link{Title: "Report", Text: "weekly", MessageURL: "https://e.com/r", PicURL: "https://e.com/p"}},
			"Report\nweekly\nhttps://e.com/r"},
		{"actionCard single", Message{ActionCard: &ActionCard{Title: "Approve", Text: "PR #1",
			SingleTitle: "Open", SingleURL: "https://e.com/pr/1"}},
			"Approve\nPR #1\nOpen: https://e.com/pr/1"},
		{"actionCard btns", Message{ActionCard: &ActionCard{Title: "Approve", Text: "PR #1", Buttons: []Button{
			{Title: "Yes", ActionURL: "https://e.com/y"}, {Title: "No", ActionURL: "https://e.com/n"}}}},
			"Approve\nPR #1\nYes: https://e.com/y\nNo: https://e.com/n"},
		{"actionCard partial button", Message{ActionCard: &ActionCard{Title: "A", Text: "B", SingleURL: "https://e.com"}},
			"A\nB\nhttps://e.com"},
		{"actionCard title-only button", Message{ActionCard: &ActionCard{Title: "A", Text: "B", SingleTitle: "Open"}},
			"A\nB\nOpen"},
		{"feedCard", Message{FeedCard: &FeedCard{Links: []FeedLink{
			{Title: "One", MessageURL: "https://e.com/1", PicURL: "https://e.com/p"}, {Title: "Two", MessageURL: "https://e.com/2"}}}},
			"One https://e.com/1\nTwo https://e.com/2"},
		{"empty parts left out", Message{Link: &Link{Title: "T", MessageURL: "https://e.com"}}, "T\nhttps://e.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.m.PlainText())
		})
	}
}
