package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/envelope"
)

// listSeqs returns the SEQ column of a "dlq list" table.
func listSeqs(t *testing.T, out string) []string {
	t.Helper()
	var seqs []string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n")[1:] {
		seqs = append(seqs, strings.Fields(line)[0])
	}
	return seqs
}

// The seeded dead letters died at 08:05 (ops, permanent 310000), 08:06
// (ops, decode) and 08:07 (dev, exhausted -1) on 2025-03-01.
func TestDLQListFilters(t *testing.T) {
	f := newFixture(t)
	seedDLQ(t, f)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "reason", args: []string{"--reason", "exhausted"}, want: []string{"3"}},
		{name: "errcode", args: []string{"--errcode", "310000"}, want: []string{"1"}},
		{name: "errcode 0 is none", args: []string{"--errcode", "0"}, want: []string{"2"}},
		{name: "since", args: []string{"--since", "2025-03-01T08:06:00Z"}, want: []string{"2", "3"}},
		{name: "until", args: []string{"--until", "2025-03-01T08:06:00Z"}, want: []string{"1"}},
		{name: "since and until", args: []string{"--since", "2025-03-01T08:06:00Z", "--until", "2025-03-01T08:07:00Z"}, want: []string{"2"}},
		{name: "robot and grep", args: []string{"--robot", "ops", "--grep", "DISK"}, want: []string{"1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.run(t, "", append([]string{"dlq", "list"}, tt.args...)...)
			require.NoError(t, r.err, r.stderr)
			require.Equal(t, tt.want, listSeqs(t, r.stdout), r.stdout)
		})
	}
	r := f.run(t, "", "dlq", "list", "--since", "1h")
	require.NoError(t, r.err)
	require.Equal(t, "no dead letters\n", r.stdout, "all were written long before the last hour")

	r = f.run(t, "", "dlq", "list", "--since", "last week")
	require.Equal(t, 2, cli.ExitCode(r.err), "a bad time is a usage error")
	require.ErrorContains(t, r.err, `since "last week"`)
}

func TestDLQReplayDryRun(t *testing.T) {
	f := newFixture(t)
	seedDLQ(t, f)
	ctx := context.Background()
	outMsgs := func() uint64 {
		s, err := f.js.Stream(ctx, f.topo.OutStream())
		require.NoError(t, err)
		info, err := s.Info(ctx)
		require.NoError(t, err)
		return info.State.Msgs
	}

	r := f.run(t, "", "dlq", "replay", "--all", "--since", "2025-03-01T08:05:30Z", "--delete", "--dry-run")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "seq 2: not replayable")
	require.Contains(t, r.stdout, "seq 3: would replay id=dl-dev robot=dev to "+f.topo.OutSubject("dev")+" and delete the dead letter")
	require.NotContains(t, r.stdout, "seq 1:")
	require.Contains(t, r.stdout, "dry run: 1 would be replayed, 1 skipped, 0 failed; nothing was changed")
	require.Zero(t, outMsgs(), "a dry run publishes nothing")
	require.Equal(t, []uint64{1, 2, 3}, f.dlqSeqs(t), "a dry run deletes nothing")

	r = f.run(t, "", "dlq", "replay", "1", "99", "--dry-run")
	require.Error(t, r.err)
	require.Contains(t, r.stdout, "seq 1: would replay id=dl-ops")
	require.Contains(t, r.stderr, "seq 99: no dead letter with sequence 99")
	require.Zero(t, outMsgs())

	// The same selection without --dry-run does what the dry run said.
	r = f.run(t, "", "dlq", "replay", "--all", "--since", "2025-03-01T08:05:30Z", "--delete")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "1 replayed, 1 skipped, 0 failed")
	require.Equal(t, uint64(1), outMsgs())
	require.Equal(t, []uint64{1, 2}, f.dlqSeqs(t))
}

func TestDLQReplayErrcodeAndProgress(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const n = 25
	for i := range n {
		env := envelope.New("bulk", envelope.Message{Text: &envelope.Text{Content: "x"}}, envelope.WithID(fmt.Sprintf("bulk-%d", i)))
		code := 310000
		if i%5 == 0 {
			code = -1
		}
		require.NoError(t, deadletter.Publish(ctx, f.js, f.topo, deadletter.Record{Envelope: env, Robot: "bulk",
			Reason: deadletter.ReasonPermanent, ErrCode: code, DeadAt: time.Now(), Subject: f.topo.OutSubject("bulk"), Sequence: uint64(i + 1)}))
	}
	r := f.run(t, "", "dlq", "replay", "--all", "--errcode", "310000")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "20 replayed, 0 skipped, 0 failed")
	require.NotContains(t, r.stdout, "id=bulk-0 ", "errcode -1 is not selected")
	// Not a terminal: plain progress lines on stderr, every tenth.
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	require.Equal(t, "progress: 0/20", lines[0])
	require.Equal(t, "progress: 20/20", lines[len(lines)-1])
	require.Len(t, lines, 11, r.stderr)
}

func TestDLQSelectionNeedsAll(t *testing.T) {
	f := newFixture(t)
	r := f.run(t, "", "dlq", "replay", "1", "--errcode", "1")
	require.Equal(t, 2, cli.ExitCode(r.err))
	require.ErrorContains(t, r.err, "narrow --all")
}
