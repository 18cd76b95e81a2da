package delivery

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/signer"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		var pretty bytes.Buffer
		require.NoError(t, json.Indent(&pretty, got, "", "  "))
		pretty.WriteByte('\n')
		require.NoError(t, os.WriteFile(path, pretty.Bytes(), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	require.JSONEq(t, string(want), string(got))
}

// renderCases covers every message kind, with and without mentions.
var renderCases = []struct {
	name string
	env  *envelope.Envelope
}{
	{"text", &envelope.Envelope{ID: "id-text", Message: envelope.Message{Text: &envelope.Text{Content: "disk full on db-1 <90%> & rising"}}}},
	{"text_mentions", &envelope.Envelope{ID: "id-text-at", Message: envelope.Message{Text: &envelope.Text{Content: "on call: @13800000001 please look"}},
		At: &envelope.At{Mobiles: []string{"13800000001", "13800000002"}, UserIDs: []string{"user7"}}}},
	{"text_all", &envelope.Envelope{ID: "id-text-all", Message: envelope.Message{Text: &envelope.Text{Content: "everyone"}}, At: &envelope.At{All: true}}},
	{"markdown_mentions", &envelope.Envelope{ID: "id-md", Message: envelope.Message{Markdown: &envelope.Markdown{Title: "Deploy", Text: "# Deploy\n**v1.2** is out"}},
		At: &envelope.At{Mobiles: []string{"13800000001"}}}},
	{"link", &envelope.Envelope{ID: "id-link", Message: envelope.Message{Link: &envelope.Link{Title: "Report", Text: "Weekly report", MessageURL: "https://example.com/r?a=1&b=2", PicURL: "https://example.com/p.png"}}}},
	{"action_card_single", &envelope.Envelope{ID: "id-ac1", Message: envelope.Message{ActionCard: &envelope.ActionCard{Title: "Approve", Text: "Release v2?", SingleTitle: "Open", SingleURL: "https://example.com/approve"}}}},
	{"action_card_buttons", &envelope.Envelope{ID: "id-ac2", Message: envelope.Message{ActionCard: &envelope.ActionCard{Title: "Vote", Text: "Pick one", BtnOrientation: "1",
		Buttons: []envelope.Button{{Title: "Yes", ActionURL: "https://example.com/yes"}, {Title: "No", ActionURL: "https://example.com/no"}}}}}},
	{"feed_card", &envelope.Envelope{ID: "id-feed", Message: envelope.Message{FeedCard: &envelope.FeedCard{Links: []envelope.FeedLink{
		{Title: "One", MessageURL: "https://example.com/1", PicURL: "https://example.com/1.png"},
		{Title: "Two", MessageURL: "https://example.com/2"},
	}}}}},
}

func TestRenderDingTalkGolden(t *testing.T) {
	for _, tt := range renderCases {
		t.Run(tt.name, func(t *testing.T) {
			b, err := renderDingTalk(tt.env)
			require.NoError(t, err)
			got, err := encodeJSON(b)
			require.NoError(t, err)
			require.NotContains(t, string(got), `\u003c`, "HTML must not be escaped")
			golden(t, "dingtalk_"+tt.name+".json", got)
		})
	}
}

func TestRenderPOPOGolden(t *testing.T) {
	for _, tt := range renderCases {
		t.Run(tt.name, func(t *testing.T) {
			b, err := renderPOPO(tt.env, "", testNow)
			require.NoError(t, err)
			got, err := encodeJSON(b)
			require.NoError(t, err)
			golden(t, "popo_"+tt.name+".json", got)
		})
	}
}

func TestRenderPOPOSigned(t *testing.T) {
	b, err := renderPOPO(renderCases[0].env, "s3cret", testNow)
	require.NoError(t, err)
	require.Equal(t, signer.Timestamp(testNow), b.Timestamp)
	require.NoError(t, signer.VerifyPOPO("s3cret", b.Timestamp, b.SignData, testNow))

	// Unsigned bodies carry neither field.
	b, err = renderPOPO(renderCases[0].env, "", testNow)
	require.NoError(t, err)
	raw, err := encodeJSON(b)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	require.Equal(t, []string{"message"}, keys(m))
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestRenderInvalidMessage(t *testing.T) {
	tests := []struct {
		name string
		msg  envelope.Message
	}{
		{"none", envelope.Message{}},
		{"two", envelope.Message{Text: &envelope.Text{Content: "a"}, Markdown: &envelope.Markdown{Title: "b", Text: "c"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := &envelope.Envelope{ID: "x", Message: tt.msg}
			_, err := renderDingTalk(env)
			require.ErrorIs(t, err, ErrInvalidMessage)
			_, err = renderPOPO(env, "", testNow)
			require.ErrorIs(t, err, ErrInvalidMessage)
		})
	}
}

func TestWithMentions(t *testing.T) {
	tests := []struct {
		name    string
		content string
		at      *envelope.At
		want    string
	}{
		{"nil", "hi", nil, "hi"},
		{"appended", "hi", &envelope.At{Mobiles: []string{"1"}, UserIDs: []string{"u"}}, "hi @1 @u"},
		{"already present", "hi @1", &envelope.At{Mobiles: []string{"1"}}, "hi @1"},
		{"empty id skipped", "hi", &envelope.At{Mobiles: []string{""}}, "hi"},
		{"all alone adds nothing", "hi", &envelope.At{All: true}, "hi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, withMentions(tt.content, tt.at, " "))
		})
	}
}

func TestCheckKeywords(t *testing.T) {
	text := &envelope.Envelope{ID: "k", Message: envelope.Message{Text: &envelope.Text{Content: "[alert] disk full"}}}
	link := &envelope.Envelope{ID: "k", Message: envelope.Message{Link: &envelope.Link{Title: "t", Text: "x", MessageURL: "https://example.com/alert"}}}
	card := &envelope.Envelope{ID: "k", Message: envelope.Message{ActionCard: &envelope.ActionCard{Title: "t", Text: "an alert",
		Buttons: []envelope.Button{{Title: "approve", ActionURL: "https://example.com"}}}}}
	single := &envelope.Envelope{ID: "k", Message: envelope.Message{ActionCard: &envelope.ActionCard{Title: "t", Text: "x",
		SingleTitle: "approve", SingleURL: "https://example.com"}}}
	feed := &envelope.Envelope{ID: "k", Message: envelope.Message{FeedCard: &envelope.FeedCard{Links: []envelope.FeedLink{{Title: "an alert", MessageURL: "https://example.com"}}}}}
	mention := &envelope.Envelope{ID: "k", Message: envelope.Message{Text: &envelope.Text{Content: "x"}}, At: &envelope.At{UserIDs: []string{"alert"}}}
	tests := []struct {
		name     string
		platform string
		keywords []string
		env      *envelope.Envelope
		err      error
	}{
		{"no keywords", PlatformDingTalk, nil, text, nil},
		{"only empty keywords", PlatformDingTalk, []string{""}, text, nil},
		{"present", PlatformDingTalk, []string{"nope", "[alert]"}, text, nil},
		{"absent", PlatformDingTalk, []string{"nope"}, text, ErrMissingKeyword},
		{"case-sensitive", PlatformDingTalk, []string{"ALERT"}, text, ErrMissingKeyword},
		{"dingtalk ignores URLs", PlatformDingTalk, []string{"alert"}, link, ErrMissingKeyword},
		{"popo reads URLs (they are text)", PlatformPOPO, []string{"alert"}, link, nil},
		{"action card text", PlatformDingTalk, []string{"alert"}, card, nil},
		{"button title does not count", PlatformDingTalk, []string{"approve"}, card, ErrMissingKeyword},
		{"single title does not count", PlatformDingTalk, []string{"approve"}, single, ErrMissingKeyword},
		{"feed title", PlatformDingTalk, []string{"alert"}, feed, nil},
		{"mention counts", PlatformDingTalk, []string{"@alert"}, mention, nil},
		{"popo absent", PlatformPOPO, []string{"nope"}, text, ErrMissingKeyword},
		{"nil envelope", PlatformPOPO, []string{"x"}, nil, ErrInvalidMessage},
		{"invalid message", PlatformDingTalk, []string{"x"}, &envelope.Envelope{}, ErrInvalidMessage},
		{"unknown platform", "slack", []string{"x"}, text, ErrInvalidRobot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckKeywords(Robot{Name: "r", Platform: tt.platform, Keywords: tt.keywords}, tt.env)
			if tt.err == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.err)
		})
	}
}
