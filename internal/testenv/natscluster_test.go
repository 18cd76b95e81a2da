package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// An R3 stream on a three-node cluster settles with a leader and two
// current replicas; when its leader is stopped another node leads and
// takes publishes; when the node is back, three current replicas again,
// with every message kept.
func TestNATSClusterLeaderChange(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node NATS cluster")
	}
	c := StartNATSCluster(t, 3)
	_, js := Connect(t, c.URLs())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: 3})
	require.NoError(t, err)
	leader := c.WaitStreamSettled(js, "S", 3, 20*time.Second)
	_, err = js.Publish(ctx, "s.a", []byte("1"))
	require.NoError(t, err)

	c.Stop(leader)
	require.Nil(t, c.Node(leader))
	_, js2 := Connect(t, c.URL((leader+1)%3))
	var ack *jetstream.PubAck
	Eventually(t, 20*time.Second, func() bool {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		defer pcancel()
		ack, err = js2.Publish(pctx, "s.b", []byte("2"))
		return err == nil
	}, "publish after the leader's loss: %v", err)
	require.Equal(t, uint64(2), ack.Sequence)
	_, err = StreamSettled(ctx, js2, "S", 3)
	require.ErrorIs(t, err, ErrNotSettled, "a replica is offline")

	c.Start(leader)
	next := c.WaitStreamSettled(js2, "S", 3, 20*time.Second)
	require.NotEqual(t, -1, next)
	s, err := js2.Stream(ctx, "S")
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(2), info.State.Msgs)
	require.Equal(t, -1, c.Index("no such node"))
	require.Equal(t, c.URL(0)+","+c.URL(1)+","+c.URL(2), c.URLs())
}
