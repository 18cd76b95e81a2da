package worker

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
)

// A direct lane's delete of a message another lane already deleted is no
// error: the server's answer to it is recognised, and other errors are not.
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
	require.True(t, isMsgGone(second))
	require.False(t, isMsgGone(context.DeadlineExceeded))
}
