package publisher_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
)

// A robot at the outbound stream's per-robot cap: the publish is refused
// with ErrStreamFull, nothing is dropped.
func TestPublishStreamFull(t *testing.T) {
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js)
	topo.Limits.OutMaxMsgsPerRobot = 2
	require.NoError(t, topo.Ensure(context.Background(), js))
	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	ctx := context.Background()
	for _, id := range []string{"n-1", "n-2"} {
		_, err := pub.Publish(ctx, text("ops", id, "hi"))
		require.NoError(t, err)
	}
	_, err = pub.Publish(ctx, text("ops", "n-3", "hi"))
	require.ErrorIs(t, err, publisher.ErrStreamFull)
	require.ErrorContains(t, err, "maximum messages per subject exceeded")
	var apiErr *jetstream.APIError
	require.ErrorAs(t, err, &apiErr, "the server's error is kept")

	res, err := pub.PublishAll(ctx, []*envelope.Envelope{text("ops", "n-4", "hi"), text("dev", "n-5", "hi")})
	require.ErrorIs(t, err, publisher.ErrStreamFull)
	require.ErrorIs(t, res[0].Err, publisher.ErrStreamFull)
	require.NoError(t, res[1].Err, "another robot is not affected")

	s, err := js.Stream(ctx, topo.OutStream())
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, info.State.Msgs)
}
