package deadletter_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/stream"
)

type fixture struct {
	js   jetstream.JetStream
	topo stream.Topology
}

func newFixture(t *testing.T, url string) fixture {
	t.Helper()
	_, js := testenv.Connect(t, url)
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(context.Background(), js))
	return fixture{js: js, topo: topo}
}

// eachServer runs body against an embedded server and, when
// BOTRELAY_TEST_SYSTEM_NATS_URL is set, the machine's nats-server 2.9.
func eachServer(t *testing.T, body func(t *testing.T, f fixture)) {
	t.Run("embedded", func(t *testing.T) { body(t, newFixture(t, testenv.NATSURL(t))) })
	if u := os.Getenv("BOTRELAY_TEST_SYSTEM_NATS_URL"); u != "" {
		t.Run("system", func(t *testing.T) { body(t, newFixture(t, u)) })
	}
}

func newEnv(robot, id string) *envelope.Envelope {
	created := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	return envelope.New(robot, envelope.Message{Markdown: &envelope.Markdown{Title: "T", Text: "**" + id + "**"}},
		envelope.WithID(id), envelope.WithClock(func() time.Time { return created }),
		envelope.WithAt(envelope.At{Mobiles: []string{"13800000000"}}), envelope.WithLabels(map[string]string{"k": "v"}),
		envelope.WithExpiresAt(created.Add(time.Hour)))
}

// record returns a dead letter of robot for the original at sequence seq.
func (f fixture) record(robot string, seq uint64) deadletter.Record {
	t0 := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	return deadletter.Record{
		Envelope: newEnv(robot, fmt.Sprintf("m-%s-%d", robot, seq)), Robot: robot,
		Reason: deadletter.ReasonExhausted, Detail: "5 attempts", Class: "retryable",
		HTTPStatus: 200, ErrCode: -1, ErrMsg: "system busy", Attempts: 5,
		FirstAttempt: t0.Add(time.Second), LastAttempt: t0.Add(time.Minute), DeadAt: t0.Add(2 * time.Minute),
		Worker: "worker-1", Subject: f.topo.OutSubject(robot), Sequence: seq,
	}
}

func (f fixture) publish(t *testing.T, recs ...deadletter.Record) {
	t.Helper()
	for _, r := range recs {
		require.NoError(t, deadletter.Publish(context.Background(), f.js, f.topo, r))
	}
}

func (f fixture) dlqCount(t *testing.T) uint64 {
	t.Helper()
	s, err := f.js.Stream(context.Background(), f.topo.DLQStream())
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

// outbound returns the messages of the outbound stream.
func (f fixture) outbound(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := f.js.Stream(ctx, f.topo.OutStream())
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

func seqs(es []deadletter.Entry) []uint64 {
	out := []uint64{}
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func TestPublishGetRoundTrip(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t))
	ctx := context.Background()
	rec := f.record("ops", 11)
	f.publish(t, rec, deadletter.Record{
		Raw: []byte{0xff, '{', 0}, Robot: "ops", Reason: deadletter.ReasonDecode, Detail: "envelope: decode: invalid",
		DeadAt: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC), Subject: f.topo.OutSubject("ops"), Sequence: 12,
	})

	e, err := deadletter.Get(ctx, f.js, f.topo, 1)
	require.NoError(t, err)
	require.Equal(t, uint64(1), e.Seq)
	got := e.Record
	require.True(t, rec.FirstAttempt.Equal(got.FirstAttempt))
	require.True(t, rec.LastAttempt.Equal(got.LastAttempt))
	require.True(t, rec.DeadAt.Equal(got.DeadAt))
	require.True(t, rec.Envelope.CreatedAt.Equal(got.Envelope.CreatedAt))
	require.True(t, rec.Envelope.ExpiresAt.Equal(*got.Envelope.ExpiresAt))
	// Times compared above; the rest must be equal field by field.
	got.FirstAttempt, got.LastAttempt, got.DeadAt = rec.FirstAttempt, rec.LastAttempt, rec.DeadAt
	got.Envelope.CreatedAt, got.Envelope.ExpiresAt = rec.Envelope.CreatedAt, rec.Envelope.ExpiresAt
	require.Equal(t, rec, got)

	e, err = deadletter.Get(ctx, f.js, f.topo, 2)
	require.NoError(t, err)
	require.Nil(t, e.Record.Envelope)
	require.Equal(t, []byte{0xff, '{', 0}, e.Record.Raw, "raw bytes survive, invalid UTF-8 included")
	require.Equal(t, deadletter.ReasonDecode, e.Record.Reason)

	s, err := f.js.Stream(ctx, f.topo.DLQStream())
	require.NoError(t, err)
	m, err := s.GetMsg(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, f.topo.DLQSubject("ops"), m.Subject)

	_, err = deadletter.Get(ctx, f.js, f.topo, 99)
	require.ErrorIs(t, err, jetstream.ErrMsgNotFound)
}

func TestPublishDedup(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t))
	// A worker died after dead-lettering and before acking: the
	// redelivered original is dead-lettered again.
	first := f.record("ops", 11)
	second := first
	second.Worker, second.Attempts = "worker-2", 6
	f.publish(t, first, second)
	require.Equal(t, uint64(1), f.dlqCount(t), "one record per original")
	e, err := deadletter.Get(context.Background(), f.js, f.topo, 1)
	require.NoError(t, err)
	require.Equal(t, "worker-1", e.Record.Worker, "the first record is kept")

	// Another original (sequence or subject) is another record.
	f.publish(t, f.record("ops", 12), f.record("dev", 11))
	require.Equal(t, uint64(3), f.dlqCount(t))

	// The outbound stream was recreated and its sequences restarted: a new
	// original at an old sequence is another record, not a duplicate.
	reused := f.record("ops", 11)
	reused.Envelope = newEnv("ops", "after-recreate")
	f.publish(t, reused)
	require.Equal(t, uint64(4), f.dlqCount(t))
	e, err = deadletter.Get(context.Background(), f.js, f.topo, 4)
	require.NoError(t, err)
	require.Equal(t, "after-recreate", e.Record.Envelope.ID)

	// Records without an envelope are told apart by their payload.
	raw := func(payload string) deadletter.Record {
		return deadletter.Record{Raw: []byte(payload), Robot: "ops", Reason: deadletter.ReasonDecode,
			Subject: f.topo.OutSubject("ops"), Sequence: 20}
	}
	f.publish(t, raw("first"), raw("first"), raw("second"))
	require.Equal(t, uint64(6), f.dlqCount(t))
}

func TestPublishMsgID(t *testing.T) {
	env := newEnv("ops", "m-1")
	tests := []struct {
		name string
		rec  deadletter.Record
		want string
	}{
		{name: "envelope", rec: deadletter.Record{Envelope: env, Subject: "botrelay.out.ops", Sequence: 7},
			want: "dlq:botrelay.out.ops:7:m-1"},
		{name: "raw payload", rec: deadletter.Record{Raw: []byte("x"), Subject: "botrelay.out.ops", Sequence: 7},
			want: "dlq:botrelay.out.ops:7:raw-2d711642b726b044"}, // sha256("x")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, deadletter.PublishMsgID(tt.rec))
		})
	}
}

func TestList(t *testing.T) {
	eachServer(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		es, err := deadletter.List(ctx, f.js, f.topo, "", 0)
		require.NoError(t, err)
		require.Empty(t, es, "empty stream")

		// seq 1..6: ops, dev, ops, qa, ops, dev
		for i, robot := range []string{"ops", "dev", "ops", "qa", "ops", "dev"} {
			f.publish(t, f.record(robot, uint64(100+i)))
		}
		// A deleted record leaves a gap.
		s, err := f.js.Stream(ctx, f.topo.DLQStream())
		require.NoError(t, err)
		require.NoError(t, s.DeleteMsg(ctx, 3))

		tests := []struct {
			name  string
			robot string
			limit int
			want  []uint64
		}{
			{name: "all", want: []uint64{1, 2, 4, 5, 6}},
			{name: "all, negative limit", limit: -1, want: []uint64{1, 2, 4, 5, 6}},
			{name: "limit", limit: 2, want: []uint64{1, 2}},
			{name: "limit past the end", limit: 10, want: []uint64{1, 2, 4, 5, 6}},
			{name: "robot", robot: "ops", want: []uint64{1, 5}},
			{name: "robot with limit", robot: "dev", limit: 1, want: []uint64{2}},
			{name: "robot whose last is last", robot: "dev", want: []uint64{2, 6}},
			{name: "robot with one", robot: "qa", want: []uint64{4}},
			{name: "unknown robot", robot: "nobody", want: []uint64{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				es, err := deadletter.List(ctx, f.js, f.topo, tt.robot, tt.limit)
				require.NoError(t, err)
				require.Equal(t, tt.want, seqs(es))
				for _, e := range es {
					require.Equal(t, e.Seq, e.Record.Sequence-99, "entry %d holds its own record", e.Seq)
					if tt.robot != "" {
						require.Equal(t, tt.robot, e.Record.Robot)
					}
				}
			})
		}

		// List cleans up after itself: no consumer is left on the stream.
		names := s.ConsumerNames(ctx)
		var left []string
		for n := range names.Name() {
			left = append(left, n)
		}
		require.NoError(t, names.Err())
		require.Empty(t, left)
	})
}

func TestListMany(t *testing.T) {
	eachServer(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		// More than one pull batch, robots interleaved.
		const n = 600
		futures := make([]jetstream.PubAckFuture, 0, n)
		for i := range n {
			robot := []string{"ops", "dev", "qa"}[i%3]
			fut, err := f.js.PublishAsync(f.topo.DLQSubject(robot), []byte(fmt.Sprintf(`{"robot":%q,"reason":"permanent","sequence":%d}`, robot, i+1)))
			require.NoError(t, err)
			futures = append(futures, fut)
		}
		for _, fut := range futures {
			select {
			case <-fut.Ok():
			case err := <-fut.Err():
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("publish not acknowledged")
			}
		}
		es, err := deadletter.List(ctx, f.js, f.topo, "", 0)
		require.NoError(t, err)
		require.Len(t, es, n)
		for i, e := range es {
			require.Equal(t, uint64(i+1), e.Seq)
			require.Equal(t, uint64(i+1), e.Record.Sequence)
		}
		es, err = deadletter.List(ctx, f.js, f.topo, "dev", 0)
		require.NoError(t, err)
		require.Len(t, es, n/3)
		for i, e := range es {
			require.Equal(t, uint64(3*i+2), e.Seq)
			require.Equal(t, "dev", e.Record.Robot)
		}
		es, err = deadletter.List(ctx, f.js, f.topo, "qa", 300)
		require.NoError(t, err)
		require.Len(t, es, 200)
		es, err = deadletter.List(ctx, f.js, f.topo, "", 300)
		require.NoError(t, err)
		require.Len(t, es, 300)
		require.Equal(t, uint64(300), es[299].Seq)
	})
}

func TestListErrors(t *testing.T) {
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js) // not ensured
	_, err := deadletter.List(context.Background(), js, topo, "", 0)
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)

	f := newFixture(t, testenv.NATSURL(t))
	_, err = f.js.Publish(context.Background(), f.topo.DLQSubject("ops"), []byte("not json"))
	require.NoError(t, err)
	f.publish(t, f.record("ops", 5))
	es, err := deadletter.List(context.Background(), f.js, f.topo, "", 0)
	require.NoError(t, err, "one bad record does not stop a listing")
	require.Len(t, es, 2)
	require.ErrorIs(t, es[0].Err, deadletter.ErrMalformed)
	require.EqualError(t, es[0].Err, "deadletter: decode record 1: deadletter: malformed record: not a JSON object")
	require.Equal(t, deadletter.Record{Robot: "ops"}, es[0].Record)
	require.NoError(t, es[1].Err)
	require.Equal(t, "m-ops-5", es[1].Record.Envelope.ID)
}

func TestReplay(t *testing.T) {
	eachServer(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		rec := f.record("ops", 11)
		f.publish(t, rec)

		e, err := deadletter.Replay(ctx, f.js, f.topo, 1, false)
		require.NoError(t, err)
		require.Equal(t, uint64(1), e.Seq)
		require.Equal(t, rec.Envelope.ID, e.Record.Envelope.ID)

		out := f.outbound(t)
		require.Len(t, out, 1)
		m := out[0]
		require.Equal(t, f.topo.OutSubject("ops"), m.Subject)
		require.Equal(t, stream.MsgID(rec.Envelope.Robot, deadletter.ReplayMsgID(rec.Envelope.ID, 1, "")), m.Header.Get(jetstream.MsgIDHeader))
		require.NotEqual(t, rec.Envelope.ID, m.Header.Get(jetstream.MsgIDHeader), "distinct from the original's dedup id")
		env, err := envelope.Decode(m.Data)
		require.NoError(t, err)
		require.Equal(t, rec.Envelope.ID, env.ID, "the same envelope")
		require.Equal(t, rec.Envelope.Message, env.Message)
		require.Equal(t, rec.Envelope.At, env.At)
		require.Equal(t, rec.Envelope.Labels, env.Labels)
		require.Equal(t, uint64(1), f.dlqCount(t), "kept without remove")

		// A second replay inside the duplicate window (a double click)
		// stores nothing and keeps the record, even with remove.
		e, err = deadletter.Replay(ctx, f.js, f.topo, 1, true)
		require.ErrorIs(t, err, deadletter.ErrAlreadyReplayed)
		require.Equal(t, rec.Envelope.ID, e.Record.Envelope.ID)
		require.Len(t, f.outbound(t), 1)
		require.Equal(t, uint64(1), f.dlqCount(t))

		// ReplayAgain means it: a second copy with its own dedup id.
		_, err = deadletter.ReplayAgain(ctx, f.js, f.topo, 1, true)
		require.NoError(t, err)
		out = f.outbound(t)
		require.Len(t, out, 2)
		id := out[1].Header.Get(jetstream.MsgIDHeader)
		require.Contains(t, id, deadletter.ReplayMsgID(rec.Envelope.ID, 1, "")+":")
		require.NotEqual(t, out[0].Header.Get(jetstream.MsgIDHeader), id)
		require.Zero(t, f.dlqCount(t), "removed")
	})
}

func TestReplayRemove(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t))
	ctx := context.Background()
	f.publish(t, f.record("ops", 11), f.record("dev", 12))
	_, err := deadletter.Replay(ctx, f.js, f.topo, 2, true)
	require.NoError(t, err)
	es, err := deadletter.List(ctx, f.js, f.topo, "", 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{1}, seqs(es), "the replayed record is deleted, the other kept")
	out := f.outbound(t)
	require.Len(t, out, 1)
	require.Equal(t, f.topo.OutSubject("dev"), out[0].Subject)

	// Replaying it again: it is gone.
	_, err = deadletter.Replay(ctx, f.js, f.topo, 2, true)
	require.ErrorIs(t, err, jetstream.ErrMsgNotFound)
	require.Len(t, f.outbound(t), 1)
}

func TestReplayNotReplayable(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t))
	ctx := context.Background()
	f.publish(t, deadletter.Record{Raw: []byte(`{"robot":`), Robot: "ops", Reason: deadletter.ReasonDecode,
		Subject: f.topo.OutSubject("ops"), Sequence: 3})
	e, err := deadletter.Replay(ctx, f.js, f.topo, 1, true)
	require.ErrorIs(t, err, deadletter.ErrNotReplayable)
	require.Equal(t, deadletter.ReasonDecode, e.Record.Reason, "the entry is returned for the message")
	require.Empty(t, f.outbound(t))
	require.Equal(t, uint64(1), f.dlqCount(t), "not deleted")
}

func TestReplayMsgID(t *testing.T) {
	require.Equal(t, "replay:a-1:42", deadletter.ReplayMsgID("a-1", 42, ""))
	require.Equal(t, "replay:a-1:42:n0", deadletter.ReplayMsgID("a-1", 42, "n0"))
}
