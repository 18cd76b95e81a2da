package console_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPagesRender: each page renders from real state, with the content
// its name promises, and a bad filter is answered on the page.
func TestPagesRender(t *testing.T) {
	r := newRig(t)
	r.addRobot("ops", 20)
	r.addRobot("dev", 20)
	r.seed()
	r.startConsole(nil)
	tests := []struct {
		name string
		path string
		code int
		want []string
	}{
		{name: "fleet", path: "/", code: http.StatusOK, want: []string{`data-robot="ops"`, "2 dead letters: producer dlq list --robot ops", "Dead letters, last hour"}},
		{name: "fleet filtered", path: "/?q=dev", code: http.StatusOK, want: []string{"1 rows"}},
		{name: "dead letters", path: "/deadletters?robot=ops", code: http.StatusOK, want: []string{`data-seq="1"`, `data-seq="2"`, "2 dead letters, newest first"}},
		{name: "detail", path: "/deadletters/1", code: http.StatusOK, want: []string{"As DingTalk shows it", "disk full on db-3", "keywords not in content", "Replay…"}},
		{name: "detail of a raw record", path: "/deadletters/4", code: http.StatusOK, want: []string{"Raw payload", "cannot be replayed"}},
		{name: "bad filter", path: "/deadletters?since=soon", code: http.StatusBadRequest, want: []string{`role="alert"`, "since"}},
		{name: "missing record", path: "/deadletters/99", code: http.StatusNotFound, want: []string{"no dead letter with sequence 99"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := r.call(http.MethodGet, tt.path, nil, nil, nil)
			require.Equal(t, tt.code, code, body)
			for _, w := range tt.want {
				require.Contains(t, body, w)
			}
		})
	}
}
