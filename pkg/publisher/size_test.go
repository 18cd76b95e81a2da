package publisher_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/stream"
)

// TestSizeRulesPerRobot: one 3,000-byte text fits the DingTalk robot and
// is refused for the WeCom robot (2,048 bytes of text), or split for it.
func TestSizeRulesPerRobot(t *testing.T) {
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(context.Background(), js))
	platforms := map[string]string{"ding": delivery.PlatformDingTalk, "wx": delivery.PlatformWeCom}
	pub, err := publisher.New(js, topo, publisher.WithSizeRules(func(robot string) envelope.Limits {
		p, _ := delivery.LookupPlatform(platforms[robot])
		return p.Size
	}))
	require.NoError(t, err)
	ctx := context.Background()
	content := strings.Repeat("disk full on db-3\n", 170) // 3,060 bytes

	_, err = pub.Publish(ctx, text("ding", "big", content))
	require.NoError(t, err, "fits DingTalk")

	_, err = pub.Publish(ctx, text("wx", "big", content))
	require.ErrorIs(t, err, envelope.ErrTooLarge, "over WeCom's text limit")
	require.Contains(t, err.Error(), "for wecom")

	res, err := pub.PublishSplit(ctx, text("wx", "big", content))
	require.NoError(t, err)
	require.Len(t, res, 2)
	require.Equal(t, "big.p1", res[0].ID)
}

func TestWithSizeRulesNil(t *testing.T) {
	_, err := publisher.New(nil, stream.Topology{}, publisher.WithSizeRules(nil))
	require.ErrorIs(t, err, publisher.ErrInvalidOption)
}
