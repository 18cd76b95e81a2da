package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/inbound"
)

func TestInboundTail(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, id := range []string{"m1", "m2"} {
		e, err := inbound.ParseDingTalk("helpdesk", []byte(`{"msgtype":"text","text":{"content":" 查询工单 4711"},"msgId":"`+id+`",`+
			`"createAt":1796162399000,"conversationType":"2","conversationId":"cid1","senderId":"uid-1","senderNick":"Li Lei",`+
			`"sessionWebhook":"https://oapi.dingtalk.com/robot/sendBySession?session=SESSIONsecret","sessionWebhookExpiredTime":1796164200000}`),
			time.Now())
		require.NoError(t, err)
		_, err = inbound.Publish(ctx, f.js, f.topo, e)
		require.NoError(t, err)
	}
	r := f.run(t, "", "inbound", "tail", "--app", "helpdesk", "--count", "2")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t,
		`{"id":"helpdesk.1","app":"helpdesk","msgtype":"text","text":"查询工单 4711","conversation_id":"cid1","conversation_type":"2",`+
			`"sender_id":"uid-1","sender_nick":"Li Lei","created_at":"2026-12-01T21:59:59Z","session_webhook_expires_at":"2026-12-01T22:30:00Z"}`+"\n"+
			`{"id":"helpdesk.2","app":"helpdesk","msgtype":"text","text":"查询工单 4711","conversation_id":"cid1","conversation_type":"2",`+
			`"sender_id":"uid-1","sender_nick":"Li Lei","created_at":"2026-12-01T21:59:59Z","session_webhook_expires_at":"2026-12-01T22:30:00Z"}`+"\n",
		r.stdout)
	require.NotContains(t, r.stdout, "SESSIONsecret")

	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no subcommand", args: []string{"inbound"}, want: "inbound: want the subcommand tail"},
		{name: "no app", args: []string{"inbound", "tail"}, want: "--app is required"},
		{name: "negative count", args: []string{"inbound", "tail", "--app", "a", "--count", "-1"}, want: "--count must not be negative"},
		{name: "stray", args: []string{"inbound", "tail", "--app", "a", "x"}, want: `unexpected argument "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.run(t, "", tt.args...)
			require.ErrorContains(t, r.err, tt.want)
			require.True(t, strings.Contains(r.err.Error(), "inbound"))
		})
	}
}
