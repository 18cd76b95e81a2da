package envelope_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
)

// TestSplitPartsAreDeliverable renders every part as the worker would and
// posts it to a stand-in DingTalk: each body must be within DingTalk's
// 20,000 bytes (the deliverer refuses a longer one without sending it),
// and a keyword in a markdown title must reach every part.
func TestSplitPartsAreDeliverable(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		sizes = append(sizes, len(b))
		mu.Unlock()
		_, _ = io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	}))
	defer srv.Close()
	d, err := delivery.New()
	require.NoError(t, err)
	robot := delivery.Robot{Name: "ops", Platform: delivery.PlatformDingTalk, Webhook: srv.URL + "/robot/send?access_token=t"}

	line := strings.Repeat("日志 log <&> ", 8) + "\n"
	long := strings.Repeat(line, 2000)
	mobiles := []string{"13800000000", "13900000000", "13700000000"}
	tests := []struct {
		name     string
		msg      envelope.Message
		keywords []string
	}{
		{"text", envelope.Message{Text: &envelope.Text{Content: long}}, nil},
		{"one long text line", envelope.Message{Text: &envelope.Text{Content: strings.Repeat("x", 70000)}}, nil},
		{"markdown", envelope.Message{Markdown: &envelope.Markdown{Title: "[ci] build log", Text: long}}, []string{"[ci]"}},
		{"one long markdown line", envelope.Message{Markdown: &envelope.Markdown{Title: "[ci] build log", Text: strings.Repeat("x", 70000)}}, []string{"[ci]"}},
		{"one long Chinese line", envelope.Message{Markdown: &envelope.Markdown{Title: "[ci] 日志", Text: strings.Repeat("磁盘", 20000)}}, []string{"[ci]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := envelope.New("ops", tt.msg, envelope.WithID(strings.Repeat("i", envelope.MaxIDLen)),
				envelope.WithAt(envelope.At{Mobiles: mobiles, UserIDs: []string{"user-1"}, All: true}))
			parts, err := envelope.Split(e, 0)
			require.NoError(t, err)
			require.Greater(t, len(parts), 2)
			robot.Keywords = tt.keywords
			for i, p := range parts {
				require.NoError(t, delivery.CheckKeywords(robot, p), "part %d: the keyword is in the title", i+1)
				res := d.Deliver(context.Background(), robot, p)
				require.Equal(t, delivery.Success, res.Outcome, "part %d: %v", i+1, res.Err)
			}
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, sizes, len(parts))
			for _, n := range sizes {
				require.LessOrEqual(t, n, delivery.DingTalkMaxBody)
			}
			sizes = sizes[:0]
		})
	}
}
