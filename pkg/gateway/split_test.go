package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/gateway"
)

// longLines returns n numbered lines of 100 bytes.
func longLines(n int) string {
	var b strings.Builder
	for i := range n {
		l := fmt.Sprintf("line %04d ", i)
		b.WriteString(l + strings.Repeat("x", 99-len(l)) + "\n")
	}
	return b.String()
}

// jsonBody encodes v as a request body.
func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestSplitMessage(t *testing.T) {
	content := longLines(500) // 50 kB: three parts
	tests := []struct {
		name string
		body map[string]any
	}{
		{"text", map[string]any{"robot": "ops", "text": content, "split": true, "at": map[string]any{"userIds": []string{"u1"}}}},
		{"markdown", map[string]any{"robot": "ops", "markdown": map[string]string{"title": "Build log", "text": content},
			"split": true, "at": map[string]any{"userIds": []string{"u1"}}, "labels": map[string]string{"app": "ci"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, testenv.NATSURL(t), gateway.Options{})
			body := jsonBody(t, tt.body)
			m := multi(t, f.post(t, "/v1/messages", body, "Idempotency-Key", "log-1"), http.StatusAccepted)
			require.Equal(t, gateway.MultiResponse{ID: "log-1", Stored: 3, Results: []gateway.Result{
				{ID: "log-1.p1", Robot: "ops", Sequence: 1},
				{ID: "log-1.p2", Robot: "ops", Sequence: 2},
				{ID: "log-1.p3", Robot: "ops", Sequence: 3},
			}}, m)

			var got strings.Builder
			for i, res := range m.Results {
				part := f.stored(t, "ops", res.Sequence)
				require.Equal(t, res.ID, part.ID)
				require.Equal(t, fmt.Sprintf("%d/3", i+1), part.Labels[envelope.LabelPart])
				require.Equal(t, i == 2, part.At != nil, "mentions on the last part only")
				text := ""
				if md := part.Message.Markdown; md != nil {
					require.Equal(t, fmt.Sprintf("Build log (%d/3)", i+1), md.Title)
					require.Equal(t, "ci", part.Labels["app"])
					text = md.Text
				} else {
					text = part.Message.Text.Content
				}
				got.WriteString(strings.TrimSuffix(text, fmt.Sprintf("\n(%d/3)", i+1)))
			}
			require.Equal(t, content, got.String())

			// A retry is deduplicated part by part.
			m = multi(t, f.post(t, "/v1/messages", body, "Idempotency-Key", "log-1"), http.StatusAccepted)
			require.Equal(t, 3, m.Stored)
			for _, res := range m.Results {
				require.True(t, res.Duplicate, res.ID)
			}
			require.EqualValues(t, 3, f.count(t))
			require.NotContains(t, f.logs.String(), "line 0001", "bodies are not logged")
		})
	}
}

func TestSplitShortMessage(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{})
	m := multi(t, f.post(t, "/v1/messages", `{"robot":"ops","id":"s-1","text":"disk full","split":true}`), http.StatusAccepted)
	require.Equal(t, gateway.MultiResponse{ID: "s-1", Stored: 1, Results: []gateway.Result{{ID: "s-1", Robot: "ops", Sequence: 1}}}, m,
		"a message that fits is stored whole, under its id")
	require.Equal(t, "disk full", f.stored(t, "ops", 1).Message.Text.Content)
}

func TestSplitFanOut(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{})
	body := jsonBody(t, map[string]any{"robots": []string{"ops", "dev"}, "text": longLines(300), "split": true})
	m := multi(t, f.post(t, "/v1/fanout", body, "Idempotency-Key", "big-1"), http.StatusAccepted)
	require.Equal(t, gateway.MultiResponse{ID: "big-1", Stored: 4, Results: []gateway.Result{
		{ID: "big-1.ops.p1", Robot: "ops", Sequence: 1},
		{ID: "big-1.ops.p2", Robot: "ops", Sequence: 2},
		{ID: "big-1.dev.p1", Robot: "dev", Sequence: 3},
		{ID: "big-1.dev.p2", Robot: "dev", Sequence: 4},
	}}, m)
	for _, res := range m.Results {
		require.Equal(t, res.ID, f.stored(t, res.Robot, res.Sequence).ID)
	}
}

func TestSplitRefused(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{})
	long := longLines(300)
	link := map[string]any{"link": map[string]string{"title": "t", "text": long, "messageUrl": "https://e.com"}}
	tests := []struct {
		name string
		path string
		body string
		want string
		not  string
	}{
		{name: "too long without split suggests it", body: jsonBody(t, map[string]any{"robot": "ops", "text": long}),
			want: `message: too large: 30323 bytes (content and mentions), limit 19744 (20000 less 256 for the platform's framing); set "split": true to send it in parts`},
		{name: "a link is not split", body: jsonBody(t, map[string]any{"robot": "ops", "message": link, "split": true}),
			want: "message: too large: 30361 bytes (content and mentions), limit 19744 (20000 less 256 for the platform's framing); only text and markdown messages can be split, not link"},
		{name: "no suggestion for a link", body: jsonBody(t, map[string]any{"robot": "ops", "message": link}),
			want: "message: too large", not: "split"},
		{name: "batch", path: "/v1/messages:batch", body: jsonBody(t, map[string]any{"robot": "ops", "text": "hi", "split": true}),
			want: "line 1: split: only for POST /v1/messages and POST /v1/fanout"},
		{name: "split is a boolean", body: `{"robot":"ops","text":"hi","split":"yes"}`, want: "split: must be a JSON boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = "/v1/messages"
			}
			r := f.post(t, path, tt.body)
			require.Equal(t, http.StatusUnprocessableEntity, r.status, "body %s", r.body)
			_, problems := r.errBody(t)
			require.Len(t, problems, 1, "problems %q", problems)
			require.True(t, strings.HasPrefix(problems[0], tt.want), "%q does not start with %q", problems[0], tt.want)
			if tt.not != "" {
				require.NotContains(t, problems[0], tt.not)
			}
		})
	}
	require.Zero(t, f.count(t))
}

func TestSplitPartialFailure(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{})
	// An operator's limit on the stream (it discards new messages) makes
	// the third part fail.
	f.limitStream(t, 2)

	body := jsonBody(t, map[string]any{"robot": "ops", "text": longLines(500), "split": true})
	r := f.post(t, "/v1/messages", body, "Idempotency-Key", "p-1")
	m := multi(t, r, http.StatusBadGateway)
	require.Equal(t, "5", r.header.Get("Retry-After"))
	require.Equal(t, 2, m.Stored)
	require.Equal(t, 1, m.Failed)
	require.Equal(t, gateway.Result{ID: "p-1.p1", Robot: "ops", Sequence: 1}, m.Results[0])
	require.Equal(t, gateway.Result{ID: "p-1.p2", Robot: "ops", Sequence: 2}, m.Results[1])
	require.Equal(t, "p-1.p3", m.Results[2].ID)
	require.Contains(t, m.Results[2].Error, "maximum messages exceeded")
}
