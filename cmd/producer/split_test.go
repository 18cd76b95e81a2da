package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
)

// numberedLines returns n lines of 100 bytes, each starting with its number.
func numberedLines(n int) string {
	var b strings.Builder
	for i := range n {
		l := fmt.Sprintf("line %04d ", i)
		b.WriteString(l + strings.Repeat("x", 99-len(l)) + "\n")
	}
	return b.String()
}

func TestSendTooLongSuggestsSplit(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		suggest bool
	}{
		{name: "text", args: []string{"--text", numberedLines(300)}, suggest: true},
		{name: "markdown", args: []string{"--markdown-file", "-", "--title", "Log"}, suggest: true},
		{name: "link", args: []string{"--link-url", "https://e.com", "--title", "t", "--text", numberedLines(300)}, suggest: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			r := f.run(t, numberedLines(300), append([]string{"send", "--robot", "ops"}, tt.args...)...)
			require.Error(t, r.err)
			require.Equal(t, 1, cli.ExitCode(r.err))
			require.ErrorContains(t, r.err, "nothing published")
			require.ErrorContains(t, r.err, "message: too large")
			if tt.suggest {
				require.ErrorContains(t, r.err, "add --split")
			} else {
				require.NotContains(t, r.err.Error(), "--split")
			}
			require.Empty(t, f.outbound(t))
		})
	}
}

func TestSendSplit(t *testing.T) {
	content := numberedLines(500) // 50 kB: three parts
	path := testenv.WriteFile(t, "log.md", content)
	tests := []struct {
		name string
		args []string
	}{
		{name: "text", args: []string{"--text", content}},
		{name: "markdown", args: []string{"--markdown-file", path, "--title", "Build log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			args := append([]string{"send", "--robot", "ops", "--id", "log-1", "--split", "--at-user", "u1", "--label", "team=ci"}, tt.args...)
			r := f.run(t, "", args...)
			require.NoError(t, r.err, r.stderr)
			require.Equal(t, "sent id=log-1.p1 robot=ops seq=1 part=1/3\n"+
				"sent id=log-1.p2 robot=ops seq=2 part=2/3\n"+
				"sent id=log-1.p3 robot=ops seq=3 part=3/3\n", r.stdout)

			msgs := f.outbound(t)
			require.Len(t, msgs, 3)
			var got strings.Builder
			for i, m := range msgs {
				require.Equal(t, f.topo.OutSubject("ops"), m.subject)
				require.Equal(t, fmt.Sprintf("ops/log-1.p%d", i+1), m.msgID)
				require.Equal(t, fmt.Sprintf("%d/3", i+1), m.env.Labels[envelope.LabelPart])
				require.Equal(t, "ci", m.env.Labels["team"])
				require.Equal(t, i == 2, m.env.At != nil, "mentions on the last part only")
				body := ""
				if md := m.env.Message.Markdown; md != nil {
					require.Equal(t, fmt.Sprintf("Build log (%d/3)", i+1), md.Title)
					body = md.Text
				} else {
					body = m.env.Message.Text.Content
				}
				got.WriteString(strings.TrimSuffix(body, fmt.Sprintf("\n(%d/3)", i+1)))
			}
			require.Equal(t, content, got.String())

			// Repeating the command stores nothing new.
			r = f.run(t, "", args...)
			require.NoError(t, r.err, r.stderr)
			require.Equal(t, 3, strings.Count(r.stdout, "duplicate id=log-1.p"))
			require.Len(t, f.outbound(t), 3)
		})
	}
}

func TestSendSplitShortAndFanOut(t *testing.T) {
	f := newFixture(t)
	// A message that fits is sent whole, under its own id.
	r := f.run(t, "", "send", "--robot", "ops", "--id", "short-1", "--split", "--text", "disk full")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "sent id=short-1 robot=ops seq=1\n", r.stdout)

	// A fan-out splits each robot's copy; each robot's parts are in order.
	r = f.run(t, "", "send", "--robot", "ops,dev", "--id", "big-1", "--split", "--text", numberedLines(300))
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "sent id=big-1.ops.p1 robot=ops seq=2 part=1/2\n"+
		"sent id=big-1.ops.p2 robot=ops seq=3 part=2/2\n"+
		"sent id=big-1.dev.p1 robot=dev seq=4 part=1/2\n"+
		"sent id=big-1.dev.p2 robot=dev seq=5 part=2/2\n", r.stdout)
	require.Len(t, f.outbound(t), 5)
}

func TestSendSplitRefused(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
		code int
	}{
		{name: "link", args: []string{"--link-url", "https://e.com", "--title", "t", "--text", numberedLines(300)},
			want: []string{"only text and markdown messages can be split, not link", "message: too large"}, code: 1},
		{name: "other problems", args: []string{"--text", numberedLines(300), "--id", "has space"},
			want: []string{"id: invalid character", "(--id)"}, code: 1},
		{name: "with -f", args: []string{"-f", "x.ndjson"}, want: []string{"don't combine it with --split"}, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			args := []string{"send", "--split"}
			if tt.args[0] != "-f" {
				args = append(args, "--robot", "ops")
			}
			r := f.run(t, "", append(args, tt.args...)...)
			require.Error(t, r.err)
			require.Equal(t, tt.code, cli.ExitCode(r.err))
			for _, w := range tt.want {
				require.ErrorContains(t, r.err, w)
			}
			require.Empty(t, r.stdout)
			require.Empty(t, f.outbound(t))
		})
	}
}

func TestSendSplitHelp(t *testing.T) {
	r := runCmd(t, "", "send", "-h")
	require.NoError(t, r.err)
	require.Contains(t, r.stdout, "--split")
	require.Contains(t, r.stdout, "<id>.p1")
}
