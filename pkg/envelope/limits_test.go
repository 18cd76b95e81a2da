package envelope

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// weComLike are size rules shaped like WeCom's (text ≤ 2,048 bytes,
// markdown ≤ 4,096 less the title's framing, at most 8 news articles).
var weComLike = Limits{Platform: "wecom", Text: 2048, Markdown: 4091, Links: 8}

func TestValidateForPlatformLimits(t *testing.T) {
	feed := func(n int) Message {
		f := &FeedCard{}
		for range n {
			f.Links = append(f.Links, FeedLink{Title: "t", MessageURL: "https://example.com/x"})
		}
		return Message{FeedCard: f}
	}
	tests := []struct {
		name      string
		msg       Message
		at        *At
		wantErr   bool
		wantLarge bool
	}{
		{"text at the text limit", Message{Text: &Text{Content: strings.Repeat("a", 2048)}}, nil, false, false},
		{"text one byte over the text limit", Message{Text: &Text{Content: strings.Repeat("a", 2049)}}, nil, true, true},
		{"markdown at the limit", Message{Markdown: &Markdown{Title: "T", Text: strings.Repeat("b", 4090)}}, nil, false, false},
		{"markdown over the limit through its mentions", Message{Markdown: &Markdown{Title: "T", Text: strings.Repeat("b", 4080)}},
			&At{UserIDs: []string{"user1234"}}, true, true},
		{"eight links", feed(8), nil, false, false},
		{"nine links", feed(9), nil, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid(tt.msg)
			e.At = tt.at
			require.NoError(t, e.Validate(), "fits the default (DingTalk) rules")
			err := e.ValidateFor(weComLike)
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
			require.Equal(t, tt.wantLarge, errors.Is(err, ErrTooLarge))
			require.Contains(t, err.Error(), "wecom")
		})
	}
}

func TestSplitForPlatformLimits(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
	}{
		{"text over WeCom's 2048 bytes", Message{Text: &Text{Content: lines(60, 80)}}},
		{"markdown over WeCom's 4096 bytes", Message{Markdown: &Markdown{Title: "Report", Text: lines(120, 80)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid(tt.msg)
			e.At = &At{UserIDs: []string{"zhangsan"}}
			whole, err := SplitFor(e, Limits{})
			require.NoError(t, err)
			require.Len(t, whole, 1, "fits DingTalk whole")

			parts, err := SplitFor(e, weComLike)
			require.NoError(t, err)
			require.Greater(t, len(parts), 1)
			checkParts(t, e, parts, MaxContentBytes)
			for i, p := range parts {
				require.NoError(t, p.ValidateFor(weComLike), "part %d fits WeCom", i+1)
			}
		})
	}
}

func TestSplitForRefusesTooManyLinks(t *testing.T) {
	f := &FeedCard{}
	for range 9 {
		f.Links = append(f.Links, FeedLink{Title: "t", MessageURL: "https://example.com/x"})
	}
	_, err := SplitFor(valid(Message{FeedCard: f}), weComLike)
	require.ErrorIs(t, err, ErrInvalid)
	require.Contains(t, err.Error(), "9 links, limit 8 for wecom")
}
