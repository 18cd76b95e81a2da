package main

import (
	"bufio"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
)

func TestSendText(t *testing.T) {
	f := newFixture(t)
	before := time.Now().UTC()
	r := f.run(t, "", "send", "--robot", "ops", "--text", "disk full on db-3", "--id", "alert-1",
		"--at-mobile", "13800000000", "--at-mobile", "13900000000", "--at-user", "u1", "--at-all",
		"--label", "team=db", "--label", "query=a=b", "--ttl", "10m")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "sent id=alert-1 robot=ops seq=1\n", r.stdout)

	msgs := f.outbound(t)
	require.Len(t, msgs, 1)
	m := msgs[0]
	require.Equal(t, f.topo.OutSubject("ops"), m.subject)
	require.Equal(t, "ops/alert-1", m.msgID, "the robot-scoped id is the dedup id")
	env := m.env
	require.Equal(t, "alert-1", env.ID)
	require.Equal(t, "ops", env.Robot)
	require.Equal(t, envelope.Message{Text: &envelope.Text{Content: "disk full on db-3"}}, env.Message)
	require.Equal(t, &envelope.At{Mobiles: []string{"13800000000", "13900000000"}, UserIDs: []string{"u1"}, All: true}, env.At)
	require.Equal(t, map[string]string{"team": "db", "query": "a=b"}, env.Labels)
	require.False(t, env.CreatedAt.Before(before.Truncate(time.Second)))
	require.NotNil(t, env.ExpiresAt)
	require.Equal(t, 10*time.Minute, env.ExpiresAt.Sub(env.CreatedAt))
}

func TestSendDefaultID(t *testing.T) {
	f := newFixture(t)
	r := f.run(t, "", "send", "--robot", "ops", "--text", "a")
	require.NoError(t, r.err)
	r2 := f.run(t, "", "send", "--robot", "ops", "--text", "a")
	require.NoError(t, r2.err)
	msgs := f.outbound(t)
	require.Len(t, msgs, 2, "two sends without --id are two messages")
	require.NotEqual(t, msgs[0].env.ID, msgs[1].env.ID)
	require.Contains(t, r.stdout, "id="+msgs[0].env.ID)
	require.Nil(t, msgs[0].env.ExpiresAt)
	require.Nil(t, msgs[0].env.At)
}

func TestSendMarkdown(t *testing.T) {
	body := "# Nightly report\n\n- **42** jobs ok\n- 1 failed\n"
	path := testenv.WriteFile(t, "report.md", body)
	tests := []struct {
		name  string
		file  string
		stdin string
	}{
		{name: "file", file: path},
		{name: "stdin", file: "-", stdin: body},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			r := f.run(t, tt.stdin, "send", "--robot", "ops", "--markdown-file", tt.file, "--title", "Nightly", "--id", "md-1")
			require.NoError(t, r.err, r.stderr)
			require.Contains(t, r.stdout, "sent id=md-1 robot=ops seq=1")
			msgs := f.outbound(t)
			require.Len(t, msgs, 1)
			require.Equal(t, envelope.Message{Markdown: &envelope.Markdown{Title: "Nightly", Text: body}}, msgs[0].env.Message)
		})
	}
}

func TestSendMarkdownMissingFile(t *testing.T) {
	f := newFixture(t)
	r := f.run(t, "", "send", "--robot", "ops", "--markdown-file", filepath.Join(t.TempDir(), "nope.md"), "--title", "T")
	require.ErrorContains(t, r.err, "nope.md")
	require.Equal(t, 1, cli.ExitCode(r.err))
	require.Empty(t, f.outbound(t))
}

func TestSendLink(t *testing.T) {
	f := newFixture(t)
	r := f.run(t, "", "send", "--robot", "ops", "--link-url", "https://status.example.com/i/7",
		"--title", "Incident 7", "--text", "API latency", "--pic-url", "https://status.example.com/p.png")
	require.NoError(t, r.err, r.stderr)
	msgs := f.outbound(t)
	require.Len(t, msgs, 1)
	require.Equal(t, envelope.Message{Link: &envelope.Link{Title: "Incident 7", Text: "API latency",
		MessageURL: "https://status.example.com/i/7", PicURL: "https://status.example.com/p.png"}}, msgs[0].env.Message)
}

func TestSendFanOut(t *testing.T) {
	f := newFixture(t)
	r := f.run(t, "", "send", "--robot", "ops,dev", "--robot", " qa ", "--robot", "ops",
		"--text", "deploy done", "--id", "deploy-9", "--label", "svc=api")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "sent id=deploy-9.ops robot=ops seq=1\n"+
		"sent id=deploy-9.dev robot=dev seq=2\n"+
		"sent id=deploy-9.qa robot=qa seq=3\n", r.stdout)

	msgs := f.outbound(t)
	require.Len(t, msgs, 3, "a robot named twice gets one copy")
	for i, robot := range []string{"ops", "dev", "qa"} {
		m := msgs[i]
		require.Equal(t, f.topo.OutSubject(robot), m.subject)
		require.Equal(t, "deploy-9."+robot, m.env.ID, "ids as publisher.FanOut derives them")
		require.Equal(t, robot+"/"+m.env.ID, m.msgID)
		require.Equal(t, robot, m.env.Robot)
		require.Equal(t, "deploy done", m.env.Message.Text.Content)
		require.Equal(t, map[string]string{"svc": "api"}, m.env.Labels)
	}

	// The fan-out is idempotent: repeating it stores nothing new.
	r = f.run(t, "", "send", "--robot", "ops,dev,qa", "--text", "deploy done", "--id", "deploy-9")
	require.NoError(t, r.err)
	require.Equal(t, 3, strings.Count(r.stdout, "duplicate id=deploy-9."))
	require.Len(t, f.outbound(t), 3)
}

func TestSendDuplicate(t *testing.T) {
	f := newFixture(t)
	r := f.run(t, "", "send", "--robot", "ops", "--text", "once", "--id", "dup-1")
	require.NoError(t, r.err)
	require.Equal(t, "sent id=dup-1 robot=ops seq=1\n", r.stdout)
	r = f.run(t, "", "send", "--robot", "ops", "--text", "once", "--id", "dup-1")
	require.NoError(t, r.err)
	require.Contains(t, r.stdout, "duplicate id=dup-1 robot=ops seq=1")
	require.Len(t, f.outbound(t), 1)
}

func TestSendInvalidPublishesNothing(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "oversize text", args: []string{"--robot", "ops", "--text", strings.Repeat("x", envelope.MaxContentBytes+1)},
			want: []string{"message: too large", "limit 19744 (20000 less 256"}},
		{name: "bad robot in fan-out", args: []string{"--robot", "ops,bad.robot", "--text", "x"},
			want: []string{`robot "bad.robot": invalid character at offset 3`, "(--robot)"}},
		{name: "bad id", args: []string{"--robot", "ops", "--text", "x", "--id", "has space"},
			want: []string{"id: invalid character", "(--id)"}},
		{name: "empty text", args: []string{"--robot", "ops", "--text", ""},
			want: []string{"message.text.content: required (--text)"}},
		{name: "markdown without title", args: []string{"--robot", "ops", "--markdown-file", "-"},
			want: []string{"message.markdown.title: required (--title)"}},
		{name: "link with bad url", args: []string{"--robot", "ops", "--link-url", "ftp://x", "--title", "t", "--text", "x"},
			want: []string{"message.link.messageUrl: scheme must be http or https", "(--link-url)"}},
		{name: "empty mobile", args: []string{"--robot", "ops", "--text", "x", "--at-mobile", ""},
			want: []string{"at.mobiles[0]: required (--at-mobile)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			r := f.run(t, "# body\n", append([]string{"send"}, tt.args...)...)
			require.Error(t, r.err)
			require.Equal(t, 1, cli.ExitCode(r.err))
			require.ErrorContains(t, r.err, "nothing published")
			for _, w := range tt.want {
				require.ErrorContains(t, r.err, w)
			}
			require.Empty(t, r.stdout)
			require.Empty(t, f.outbound(t), "nothing may be stored")
		})
	}
}

func TestSendNDJSON(t *testing.T) {
	lines := []string{
		`{"id":"n-1","robot":"ops","message":{"text":{"content":"one"}},"created_at":"2025-01-02T03:04:05Z"}`,
		`{"robot":"dev","message":{"markdown":{"title":"T","text":"two"}}}`,
		``,
		`{"robot":"ops","message":{"text":{"content":"three"}}`, // truncated JSON
		`{"id":"n-5","robot":"bad robot","message":{"text":{"content":"five"}}}`,
		`{"id":"n-6","robot":"ops","message":{"text":{"content":"six"}},"colour":"red"}`,
		`   {"id":"n-7","robot":"qa","message":{"text":{"content":"seven"}},"created_at":null,"labels":{"k":"v"}}  `,
		`{"id":"n-8","robot":"ops","message":{"text":{"content":"` + strings.Repeat("y", envelope.MaxContentBytes) + `"}}}`,
		`[1,2]`,
		`{"v":9,"id":"n-10","robot":"ops","message":{"text":{"content":"ten"}}}`,
	}
	input := strings.Join(lines, "\r\n") // CRLF is fine too; no newline after the last line
	path := testenv.WriteFile(t, "in.ndjson", input)

	for _, src := range []string{path, "-"} {
		t.Run(map[string]string{path: "file", "-": "stdin"}[src], func(t *testing.T) {
			f := newFixture(t)
			before := time.Now().UTC().Add(-time.Second)
			r := f.run(t, input, "send", "-f", src)
			require.Error(t, r.err)
			require.Equal(t, 1, cli.ExitCode(r.err))
			require.ErrorContains(t, r.err, "6 of 9 envelopes failed")

			for _, want := range []string{
				"line 4: not a JSON object",
				`line 5: invalid envelope: robot: invalid character at offset 3`,
				`line 6: envelope: decode: json: unknown field "colour"`,
				"line 8: invalid envelope: message: too large",
				"line 9: not a JSON object",
				"line 10: envelope: decode: envelope: unsupported schema version",
			} {
				require.Contains(t, r.stderr, want)
			}
			for _, notWant := range []string{"line 1:", "line 2:", "line 3:", "line 7:"} {
				require.NotContains(t, r.stderr, notWant)
			}
			require.Contains(t, r.stdout, "line 1: published id=n-1 robot=ops seq=1\n")
			require.Contains(t, r.stdout, "line 7: published id=n-7 robot=qa seq=3\n")
			require.Contains(t, r.stdout, "3 published, 6 failed")

			msgs := f.outbound(t)
			require.Len(t, msgs, 3)
			require.Equal(t, "n-1", msgs[0].env.ID)
			require.Equal(t, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), msgs[0].env.CreatedAt.UTC())

			// Line 2 got a fresh id and created_at.
			two := msgs[1].env
			require.Equal(t, "dev", two.Robot)
			require.Len(t, two.ID, 26)
			require.Equal(t, "dev/"+two.ID, msgs[1].msgID)
			require.Contains(t, r.stdout, "line 2: published id="+two.ID+" robot=dev seq=2\n")
			require.False(t, two.CreatedAt.Before(before))
			require.Equal(t, "two", two.Message.Markdown.Text)

			require.Equal(t, "n-7", msgs[2].env.ID)
			require.Equal(t, f.topo.OutSubject("qa"), msgs[2].subject)
			require.Equal(t, map[string]string{"k": "v"}, msgs[2].env.Labels)
			require.False(t, msgs[2].env.CreatedAt.IsZero())
		})
	}
}

func TestSendNDJSONBatches(t *testing.T) {
	f := newFixture(t)
	n := 2*batchSize + 7
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"id":"b-%d","robot":"r%d","message":{"text":{"content":"m %d"}}}`+"\n", i, i%3, i)
	}
	r := f.run(t, b.String(), "send", "-f", "-")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, fmt.Sprintf("%d published, 0 failed", n))
	msgs := f.outbound(t)
	require.Len(t, msgs, n)
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[m.env.ID] = true
	}
	for i := range n {
		require.True(t, seen[fmt.Sprintf("b-%d", i)], "b-%d stored", i)
	}
}

func TestSendNDJSONDuplicates(t *testing.T) {
	f := newFixture(t)
	input := `{"id":"d-1","robot":"ops","message":{"text":{"content":"one"}}}
{"id":"d-2","robot":"dev","message":{"text":{"content":"two"}}}
`
	r := f.run(t, input, "send", "-f", "-")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "line 1: published id=d-1 robot=ops seq=1\n"+
		"line 2: published id=d-2 robot=dev seq=2\n"+
		"2 published, 0 failed\n", r.stdout)

	// Sending the file again (a retried job) stores nothing new, and says so
	// like a single send does.
	r = f.run(t, input+`{"id":"d-3","robot":"ops","message":{"text":{"content":"three"}}}`, "send", "-f", "-")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "line 1: duplicate id=d-1 robot=ops seq=1\n"+
		"line 2: duplicate id=d-2 robot=dev seq=2\n"+
		"line 3: published id=d-3 robot=ops seq=3\n"+
		"3 published, 0 failed (2 of the published were duplicates, already stored)\n", r.stdout)
	require.Len(t, f.outbound(t), 3)
}

func TestSendNDJSONMissingFile(t *testing.T) {
	f := newFixture(t)
	r := f.run(t, "", "send", "-f", filepath.Join(t.TempDir(), "absent.ndjson"))
	require.ErrorContains(t, r.err, "absent.ndjson")
	require.Equal(t, 1, cli.ExitCode(r.err))
}

func TestReadLine(t *testing.T) {
	in := "short\n" + strings.Repeat("L", 40) + "\nok\n" + strings.Repeat("M", 33) + "\nlast"
	br := bufio.NewReaderSize(strings.NewReader(in), 16) // the minimum buffer: long lines span reads
	type got struct {
		line    string
		tooLong bool
		eof     bool
	}
	var gots []got
	for {
		line, tooLong, err := readLine(br, 32)
		gots = append(gots, got{line: strings.TrimSpace(string(line)), tooLong: tooLong, eof: err != nil})
		if err != nil {
			break
		}
	}
	require.Equal(t, []got{
		{line: "short"},
		{tooLong: true},
		{line: "ok"},
		{tooLong: true},
		{line: "last", eof: true},
	}, gots)
}

func TestPrepareLine(t *testing.T) {
	now := func() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.FixedZone("x", 3600)) }
	tests := []struct {
		name      string
		line      string
		wantErr   string
		wantID    string // "" means a fresh one
		wantStamp time.Time
	}{
		{name: "complete", line: `{"id":"a","robot":"r","message":{"text":{"content":"x"}},"created_at":"2024-01-01T00:00:00Z"}`,
			wantID: "a", wantStamp: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "fills id and time", line: `{"robot":"r","message":{"text":{"content":"x"}}}`, wantStamp: now()},
		{name: "empty id is filled", line: `{"id":"","robot":"r","message":{"text":{"content":"x"}},"created_at":""}`, wantStamp: now()},
		{name: "null", line: `null`, wantErr: "not a JSON object: null"},
		{name: "string", line: `"hi"`, wantErr: "not a JSON object"},
		{name: "trailing data", line: `{"robot":"r"} {}`, wantErr: "not a JSON object"},
		{name: "two problems on one line", line: `{"robot":"","message":{}}`,
			wantErr: "invalid envelope: robot: required; message: no message kind set"},
		{name: "expiry before creation", line: `{"robot":"r","message":{"text":{"content":"x"}},"created_at":"2024-01-01T00:00:00Z","expires_at":"2023-01-01T00:00:00Z"}`,
			wantErr: "expires_at: must be after created_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := prepareLine([]byte(tt.line), now)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), "\n", "one line per input line")
				return
			}
			require.NoError(t, err)
			if tt.wantID != "" {
				require.Equal(t, tt.wantID, env.ID)
			} else {
				require.Len(t, env.ID, 26)
			}
			require.True(t, tt.wantStamp.Equal(env.CreatedAt), "created_at %s", env.CreatedAt)
		})
	}
}
