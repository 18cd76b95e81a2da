package worker

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
)

// A direct lane's delete of a message another lane already deleted is no
// error: the server's answers to it are recognised ("no message found" for
// the stream's last one on 2.15, "sequence not found" for one between
// others and on 2.9), and other errors are not.
func TestDeleteOfAGoneMessageIsNoError(t *testing.T) {
	ns := testenv.StartNATS(t)
	_, js := testenv.Connect(t, ns.ClientURL())
	ctx := context.Background()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "GONE", Subjects: []string{"gone.*"}, Retention: jetstream.WorkQueuePolicy})
	require.NoError(t, err)
	ack, err := js.Publish(ctx, "gone.a", []byte("x"))
	require.NoError(t, err)
	m := &directMsg{raw: &jetstream.RawStreamMsg{Sequence: ack.Sequence}, st: st}
	require.NoError(t, m.Ack())
	require.NoError(t, m.Ack(), "deleted twice")
	settled, ackErr, _, _ := m.outcome()
	require.True(t, settled)
	require.NoError(t, ackErr)

	second := st.DeleteMsg(ctx, ack.Sequence)
	require.Error(t, second)
	require.True(t, isMsgGone(second), "%v", second)
	require.False(t, isMsgGone(context.DeadlineExceeded))

	// One between two others, deleted twice (two lanes that settled it).
	var seqs []uint64
	for _, subj := range []string{"gone.a", "gone.b", "gone.c"} {
		a, err := js.Publish(ctx, subj, []byte("x"))
		require.NoError(t, err)
		seqs = append(seqs, a.Sequence)
	}
	mid := &directMsg{raw: &jetstream.RawStreamMsg{Sequence: seqs[1]}, st: st}
	require.NoError(t, mid.Ack())
	require.NoError(t, mid.Ack(), "a message between others deleted twice")
	again := st.DeleteMsg(ctx, seqs[1])
	require.Error(t, again)
	require.True(t, isMsgGone(again), "%v", again)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(2), info.State.Msgs, "the other two are still there")
}
