package inbound_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/inbound"
)

var received = time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)

func body(msgID string) []byte {
	return []byte(`{"msgtype":"text","text":{"content":" /rollback shop"},"msgId":"` + msgID + `","createAt":1796162399000,` +
		`"conversationType":"2","conversationId":"cid1","senderId":"uid-9","senderNick":"Han Meimei",` +
		`"sessionWebhook":"https://oapi.dingtalk.com/robot/sendBySession?session=SECRETsession","sessionWebhookExpiredTime":"1796164200000"}`)
}

func TestParseDingTalk(t *testing.T) {
	e, err := inbound.ParseDingTalk("deploy", body("m1"), received)
	require.NoError(t, err)
	require.Equal(t, inbound.Summary{App: "deploy", MsgType: "text", Text: "/rollback shop", ConversationID: "cid1",
		ConversationType: "2", SenderID: "uid-9", SenderNick: "Han Meimei", CreatedAt: time.UnixMilli(1796162399000).UTC(),
		SessionWebhookExpiresAt: time.UnixMilli(1796164200000).UTC()}, e.Summary())
	require.Equal(t, received, e.ReceivedAt)

	app, seq, err := inbound.ParseEventID("deploy.bot.42")
	require.NoError(t, err)
	require.Equal(t, "deploy.bot", app)
	require.Equal(t, uint64(42), seq)
	require.Equal(t, "deploy.bot.42", inbound.EventID(app, seq))
	for _, bad := range []string{"", "deploy", "deploy.", ".4", "deploy.0", "deploy.x"} {
		_, _, err := inbound.ParseEventID(bad)
		require.ErrorIs(t, err, inbound.ErrInvalid, bad)
	}

	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "not JSON", body: `[`, want: "inbound: invalid callback: body is not a JSON object"},
		{name: "empty", body: `{}`, want: "msgId: required, 1-200 characters of [A-Za-z0-9._:=+/-]; conversationId: required; " +
			"sessionWebhook: required, an http(s) URL; sessionWebhookExpiredTime: required, milliseconds since the epoch"},
		{name: "bad webhook", body: `{"msgId":"a","conversationId":"c","sessionWebhook":"ftp://SECRETsession","sessionWebhookExpiredTime":1}`,
			want: "inbound: invalid callback: sessionWebhook: required, an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := inbound.ParseDingTalk("deploy", []byte(tt.body), received)
			require.ErrorIs(t, err, inbound.ErrInvalid)
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), "SECRETsession")
		})
	}
}

func TestPublishSubscribe(t *testing.T) {
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js)
	ctx := context.Background()
	require.NoError(t, topo.Ensure(ctx, js))
	for _, id := range []string{"m1", "m2", "m3"} {
		e, err := inbound.ParseDingTalk("deploy", body(id), received)
		require.NoError(t, err)
		_, err = inbound.Publish(ctx, js, topo, e)
		require.NoError(t, err)
	}
	e, _ := inbound.ParseDingTalk("deploy", body("m1"), received)
	seq, err := inbound.Publish(ctx, js, topo, e)
	require.ErrorIs(t, err, inbound.ErrDuplicate)
	require.Equal(t, uint64(1), seq)
	require.Equal(t, "deploy.1", e.ID)

	got, err := inbound.Get(ctx, js, topo, "deploy.2")
	require.NoError(t, err)
	require.Equal(t, "m2", got.MsgID)
	require.Equal(t, "deploy.2", got.ID)
	require.Equal(t, "https://oapi.dingtalk.com/robot/sendBySession?session=SECRETsession", got.SessionWebhook)
	for _, id := range []string{"deploy.9", "other.2"} {
		_, err = inbound.Get(ctx, js, topo, id)
		require.ErrorIs(t, err, inbound.ErrNotFound, id)
	}

	// m2 fails once and comes back; the others are acked once.
	var mu sync.Mutex
	var seen []string
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	failed := false
	go func() {
		done <- inbound.Subscribe(sctx, js, topo, "deploy", func(_ context.Context, m *inbound.Msg) error {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, m.Event.MsgID)
			if m.Event.MsgID == "m2" && !failed {
				failed = true
				return errors.New("busy")
			}
			return nil
		}, inbound.SubscribeOptions{NakDelay: 50 * time.Millisecond})
	}()
	testenv.Eventually(t, 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 4 }, "4 deliveries")
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	mu.Lock()
	require.ElementsMatch(t, []string{"m1", "m2", "m2", "m3"}, seen)
	mu.Unlock()

	// Acked: a new subscriber on the durable consumer gets nothing old.
	c, err := js.Consumer(ctx, topo.InStream(), topo.InConsumerName("deploy"))
	require.NoError(t, err)
	info, err := c.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(0), info.NumPending)
	require.Equal(t, 0, info.NumAckPending)
}
