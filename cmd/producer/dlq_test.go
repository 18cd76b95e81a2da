package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/envelope"
)

// seedDLQ writes three dead letters: seq 1 a refused message for ops, seq
// 2 an undecodable payload for ops, seq 3 an exhausted message for dev.
func seedDLQ(t *testing.T, f fixture) (ops, dev *envelope.Envelope) {
	t.Helper()
	ctx := context.Background()
	created := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	clock := envelope.WithClock(func() time.Time { return created })
	ops = envelope.New("ops", envelope.Message{Text: &envelope.Text{Content: "disk full"}}, envelope.WithID("dl-ops"), clock)
	dev = envelope.New("dev", envelope.Message{Text: &envelope.Text{Content: "build red"}}, envelope.WithID("dl-dev"), clock)
	dead := time.Date(2025, 3, 1, 8, 5, 0, 0, time.UTC)
	recs := []deadletter.Record{
		{Envelope: ops, Robot: "ops", Reason: deadletter.ReasonPermanent, Class: "permanent",
			Detail:  "security check failed:\tkeywords not in content\n" + strings.Repeat("more detail ", 20),
			ErrCode: 310000, ErrMsg: "keywords not in content", Attempts: 1, DeadAt: dead,
			Subject: f.topo.OutSubject("ops"), Sequence: 11},
		{Raw: []byte(`{"robot":"ops","message":`), Robot: "ops", Reason: deadletter.ReasonDecode,
			Detail: "envelope: decode: unexpected EOF", DeadAt: dead.Add(time.Minute),
			Subject: f.topo.OutSubject("ops"), Sequence: 12},
		{Envelope: dev, Robot: "dev", Reason: deadletter.ReasonExhausted, Class: "retryable",
			Detail: "5 attempts", ErrCode: -1, ErrMsg: "system busy", Attempts: 5, DeadAt: dead.Add(2 * time.Minute),
			Subject: f.topo.OutSubject("dev"), Sequence: 13},
	}
	for _, rec := range recs {
		require.NoError(t, deadletter.Publish(ctx, f.js, f.topo, rec))
	}
	return ops, dev
}

func (f fixture) dlqSeqs(t *testing.T) []uint64 {
	t.Helper()
	es, err := deadletter.List(context.Background(), f.js, f.topo, "", 0)
	require.NoError(t, err)
	seqs := []uint64{}
	for _, e := range es {
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

func TestDLQList(t *testing.T) {
	f := newFixture(t)
	seedDLQ(t, f)

	r := f.run(t, "", "dlq", "list")
	require.NoError(t, r.err, r.stderr)
	rows := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	require.Len(t, rows, 4, r.stdout)
	require.Equal(t, []string{"SEQ", "DEAD_AT", "ROBOT", "REASON", "ATTEMPTS", "ERRCODE", "DETAIL"}, strings.Fields(rows[0]))
	want := [][]string{
		{"1", "2025-03-01T08:05:00Z", "ops", "permanent", "1", "310000", "security"},
		{"2", "2025-03-01T08:06:00Z", "ops", "decode", "0", "-", "envelope:"},
		{"3", "2025-03-01T08:07:00Z", "dev", "exhausted", "5", "-1", "5"},
	}
	for i, w := range want {
		require.Equal(t, w, strings.Fields(rows[i+1])[:len(w)], "row %d: %q", i+1, rows[i+1])
	}
	// The long detail is flattened and cut.
	require.Contains(t, rows[1], "security check failed: keywords not in content more")
	require.True(t, strings.HasSuffix(rows[1], "…"), rows[1])
	require.NotContains(t, rows[1], "\t")
	require.Empty(t, r.stderr)

	r = f.run(t, "", "dlq", "list", "--robot", "dev")
	require.NoError(t, r.err)
	rows = strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	require.Len(t, rows, 2)
	require.Equal(t, "3", strings.Fields(rows[1])[0])

	r = f.run(t, "", "dlq", "list", "--limit", "1")
	require.NoError(t, r.err)
	require.Len(t, strings.Split(strings.TrimRight(r.stdout, "\n"), "\n"), 2)
	require.Contains(t, r.stderr, "--limit 0 shows all")

	r = f.run(t, "", "dlq", "list", "--robot", "nobody")
	require.NoError(t, r.err)
	require.Equal(t, "no dead letters\n", r.stdout)
}

func TestDLQListJSON(t *testing.T) {
	f := newFixture(t)
	ops, _ := seedDLQ(t, f)
	r := f.run(t, "", "dlq", "list", "--json", "--robot", "ops")
	require.NoError(t, r.err, r.stderr)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	require.Len(t, lines, 2)
	var first, second entryJSON
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &second))
	require.Equal(t, uint64(1), first.Seq)
	require.Equal(t, ops.ID, first.Record.Envelope.ID)
	require.Equal(t, 310000, first.Record.ErrCode)
	require.Equal(t, uint64(2), second.Seq)
	require.Equal(t, deadletter.ReasonDecode, second.Record.Reason)
	require.Equal(t, `{"robot":"ops","message":`, second.RawText)
}

func TestDLQShow(t *testing.T) {
	f := newFixture(t)
	_, dev := seedDLQ(t, f)
	r := f.run(t, "", "dlq", "show", "3")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "\n  \"seq\": 3,\n", "indented JSON")
	var got entryJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, uint64(3), got.Seq)
	require.Equal(t, dev.ID, got.Record.Envelope.ID)
	require.Equal(t, "system busy", got.Record.ErrMsg)
	require.Equal(t, 5, got.Record.Attempts)
	require.Equal(t, f.topo.OutSubject("dev"), got.Record.Subject)

	r = f.run(t, "", "dlq", "show", "99")
	require.ErrorContains(t, r.err, "no dead letter with sequence 99")
	require.Equal(t, 1, cli.ExitCode(r.err))
}

func TestDLQReplayDelete(t *testing.T) {
	f := newFixture(t)
	ops, _ := seedDLQ(t, f)

	r := f.run(t, "", "dlq", "replay", "1", "--delete")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "seq 1: replayed id=dl-ops robot=ops to "+f.topo.OutSubject("ops")+", dead letter deleted")
	require.Contains(t, r.stdout, "1 replayed, 0 skipped, 0 failed")

	msgs := f.outbound(t)
	require.Len(t, msgs, 1)
	m := msgs[0]
	require.Equal(t, f.topo.OutSubject("ops"), m.subject)
	require.NotEmpty(t, m.msgID)
	require.NotEqual(t, ops.ID, m.msgID, "a replay needs a dedup id distinct from the original's")
	require.Equal(t, ops.ID, m.env.ID)
	require.Equal(t, ops.Message, m.env.Message)

	require.Equal(t, []uint64{2, 3}, f.dlqSeqs(t), "the replayed record is deleted, the others kept")
	s, err := f.js.Stream(context.Background(), f.topo.DLQStream())
	require.NoError(t, err)
	_, err = s.GetMsg(context.Background(), 1)
	require.ErrorIs(t, err, jetstream.ErrMsgNotFound)
}

func TestDLQReplayNotReplayable(t *testing.T) {
	f := newFixture(t)
	seedDLQ(t, f)

	r := f.run(t, "", "dlq", "replay", "2", "--delete")
	require.NoError(t, r.err, "a skipped record is not a failure")
	require.Contains(t, r.stdout, "seq 2: not replayable (reason decode, robot ops)")
	require.Contains(t, r.stdout, "0 replayed, 1 skipped, 0 failed")
	require.Empty(t, f.outbound(t))
	require.Equal(t, []uint64{1, 2, 3}, f.dlqSeqs(t), "a skipped record is kept even with --delete")
}

func TestDLQReplaySelection(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantIDs    []string
		wantStdout []string
		wantDLQ    []uint64
	}{
		{name: "all", args: []string{"--all"}, wantIDs: []string{"dl-ops", "dl-dev"},
			wantStdout: []string{"seq 2: not replayable", "2 replayed, 1 skipped, 0 failed"}, wantDLQ: []uint64{1, 2, 3}},
		{name: "all with delete", args: []string{"--all", "--delete"}, wantIDs: []string{"dl-ops", "dl-dev"},
			wantStdout: []string{"2 replayed, 1 skipped"}, wantDLQ: []uint64{2}},
		{name: "by robot", args: []string{"--all", "--robot", "dev"}, wantIDs: []string{"dl-dev"},
			wantStdout: []string{"1 replayed, 0 skipped"}, wantDLQ: []uint64{1, 2, 3}},
		{name: "by reason", args: []string{"--all", "--reason", "permanent", "--delete"}, wantIDs: []string{"dl-ops"},
			wantStdout: []string{"seq 1: replayed"}, wantDLQ: []uint64{2, 3}},
		{name: "nothing matches", args: []string{"--all", "--reason", "expired"},
			wantStdout: []string{"no dead letters to replay"}, wantDLQ: []uint64{1, 2, 3}},
		{name: "several seqs", args: []string{"3", "1"}, wantIDs: []string{"dl-dev", "dl-ops"},
			wantStdout: []string{"2 replayed"}, wantDLQ: []uint64{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			seedDLQ(t, f)
			r := f.run(t, "", append([]string{"dlq", "replay"}, tt.args...)...)
			require.NoError(t, r.err, r.stderr)
			for _, w := range tt.wantStdout {
				require.Contains(t, r.stdout, w)
			}
			var ids []string
			for _, m := range f.outbound(t) {
				ids = append(ids, m.env.ID)
				require.True(t, strings.HasPrefix(m.msgID, m.env.Robot+"/replay:"), m.msgID)
			}
			require.Equal(t, tt.wantIDs, ids)
			require.Equal(t, tt.wantDLQ, f.dlqSeqs(t))
		})
	}
}

func TestDLQReplayTwice(t *testing.T) {
	f := newFixture(t)
	seedDLQ(t, f)
	r := f.run(t, "", "dlq", "replay", "1")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "1 replayed, 0 skipped, 0 failed")

	// The same command again (a retry, a double click) sends nothing, and
	// --delete deletes nothing: the first replay owns the record.
	r = f.run(t, "", "dlq", "replay", "1", "--delete")
	require.NoError(t, r.err, "an already replayed record is skipped, not failed")
	require.Contains(t, r.stdout, "seq 1: already replayed moments ago (id=dl-ops robot=ops); skipped, dead letter kept (--force replays it again)")
	require.Contains(t, r.stdout, "0 replayed, 1 skipped, 0 failed")
	require.Len(t, f.outbound(t), 1)
	require.Equal(t, []uint64{1, 2, 3}, f.dlqSeqs(t))

	// --force means it.
	r = f.run(t, "", "dlq", "replay", "1", "--delete", "--force")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "seq 1: replayed id=dl-ops robot=ops to "+f.topo.OutSubject("ops")+", dead letter deleted")
	msgs := f.outbound(t)
	require.Len(t, msgs, 2)
	require.Equal(t, "dl-ops", msgs[1].env.ID)
	require.NotEqual(t, msgs[0].msgID, msgs[1].msgID)
	require.Equal(t, []uint64{2, 3}, f.dlqSeqs(t))
}

func TestDLQReplayMissingSeq(t *testing.T) {
	f := newFixture(t)
	seedDLQ(t, f)
	r := f.run(t, "", "dlq", "replay", "99", "3")
	require.ErrorContains(t, r.err, "1 of 2 dead letters failed")
	require.Equal(t, 1, cli.ExitCode(r.err))
	require.Contains(t, r.stderr, "seq 99: no such dead letter")
	require.Contains(t, r.stdout, "seq 3: replayed id=dl-dev")
	require.Len(t, f.outbound(t), 1, "the other sequence is still replayed")
}

func TestDLQReplayExpiredWarns(t *testing.T) {
	f := newFixture(t)
	env := envelope.New("ops", envelope.Message{Text: &envelope.Text{Content: "late"}}, envelope.WithID("old"),
		envelope.WithClock(func() time.Time { return time.Now().Add(-time.Hour) }), envelope.WithTTL(time.Minute))
	require.NoError(t, deadletter.Publish(context.Background(), f.js, f.topo, deadletter.Record{
		Envelope: env, Robot: "ops", Reason: deadletter.ReasonExpired, DeadAt: time.Now(),
		Subject: f.topo.OutSubject("ops"), Sequence: 1}))
	r := f.run(t, "", "dlq", "replay", "1")
	require.NoError(t, r.err)
	require.Contains(t, r.stderr, "warning: id=old expired")
}

func TestDLQMissingStream(t *testing.T) {
	f := newFixture(t)
	r := runCmd(t, "", "--nats", f.url, "dlq", "--prefix", "nodlqhere", "list")
	require.ErrorContains(t, r.err, "NODLQHERE_DLQ does not exist")
	require.Equal(t, 1, cli.ExitCode(r.err))
}
