package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/envelope"
)

func TestEscapeControls(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "plain", in: "keywords not in content", want: "keywords not in content"},
		{name: "ANSI colour", in: "\x1b[31mred\x1b[0m", want: `\x1b[31mred\x1b[0m`},
		{name: "whitespace controls", in: "a\tb\nc\rd", want: "a b c d"},
		{name: "C1 CSI and DEL", in: "x\u009b2J\x7f", want: `x\x9b2J\x7f`},
		{name: "bidi override", in: "abc\u202edef", want: `abc\u202edef`},
		{name: "invalid UTF-8", in: "a\xffb", want: `a\xffb`},
		{name: "other scripts stay", in: "消息过长 ✓", want: "消息过长 ✓"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, escapeControls(tt.in))
		})
	}
}

// hostileErrMsg is a platform errmsg that would drive a terminal.
const hostileErrMsg = "\x1b[2J\x1b[31mboom\x1b[0m \u009b6n \u202etxt"

func TestDLQListEscapesControls(t *testing.T) {
	f := newFixture(t)
	env := envelope.New("ops", envelope.Message{Text: &envelope.Text{Content: "hi \x1b]0;title\x07"}}, envelope.WithID("esc-1"))
	rec := deadletter.Record{Envelope: env, Robot: "ops", Reason: deadletter.ReasonPermanent, ErrCode: 1, ErrMsg: hostileErrMsg,
		DeadAt: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC), Subject: f.topo.OutSubject("ops"), Sequence: 1}
	require.NoError(t, deadletter.Publish(context.Background(), f.js, f.topo, rec))

	for _, args := range [][]string{{"dlq", "list"}, {"dlq", "list", "--json"}, {"dlq", "show", "1"}} {
		r := f.run(t, "", args...)
		require.NoError(t, r.err, r.stderr)
		require.False(t, strings.ContainsFunc(r.stdout, func(c rune) bool { return unsafeRune(c) && c != '\n' }),
			"%v prints a control character: %q", args, r.stdout)
		if len(args) == 2 { // the table
			require.Contains(t, r.stdout, `\x1b[2J\x1b[31mboom\x1b[0m \x9b6n \u202etxt`)
			continue
		}
		var got struct {
			Record deadletter.Record `json:"record"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
		require.Equal(t, hostileErrMsg, got.Record.ErrMsg, "the JSON still means the original text")
		require.Equal(t, "hi \x1b]0;title\x07", got.Record.Envelope.Message.Text.Content)
	}
}

func TestDLQBadRecordSkipped(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ops, dev := seedDLQ(t, f) // seq 1–3
	_, err := f.js.Publish(ctx, f.topo.DLQSubject("ops"), []byte("not a record \x1b[31m"))
	require.NoError(t, err) // seq 4
	require.NoError(t, deadletter.Publish(ctx, f.js, f.topo, deadletter.Record{Envelope: ops.ForRobot("ops", 0), Robot: "ops",
		Reason: deadletter.ReasonExpired, Subject: f.topo.OutSubject("ops"), Sequence: 20})) // seq 5

	r := f.run(t, "", "dlq", "list")
	require.NoError(t, r.err, r.stderr)
	rows := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	require.Len(t, rows, 5, r.stdout) // header, 1, 2, 3, 5
	require.Equal(t, "5", strings.Fields(rows[4])[0])
	require.True(t, strings.HasPrefix(r.stderr, "seq 4: skipped: deadletter: decode record 4: "), r.stderr)
	require.NotContains(t, r.stderr, "\x1b")

	r = f.run(t, "", "dlq", "replay", "--all")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stderr, "seq 4: skipped")
	require.Contains(t, r.stdout, "seq 1: replayed id="+ops.ID)
	require.Contains(t, r.stdout, "seq 3: replayed id="+dev.ID)
	require.Contains(t, r.stdout, "3 replayed, 1 skipped, 0 failed") // seq 2 holds no envelope
}
