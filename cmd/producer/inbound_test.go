package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/envelope"
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

func TestReply(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	e, err := inbound.ParseDingTalk("helpdesk", []byte(`{"msgtype":"text","text":{"content":" 查询工单 4711"},"msgId":"m1",`+
		`"conversationId":"cid1","senderId":"uid-1","senderStaffId":"staff-1",`+
		`"sessionWebhook":"https://oapi.dingtalk.com/robot/sendBySession?session=SESSIONsecret","sessionWebhookExpiredTime":1796164200000}`),
		time.Now())
	require.NoError(t, err)
	_, err = inbound.Publish(ctx, f.js, f.topo, e)
	require.NoError(t, err)

	r := f.run(t, "", "reply", "--to", "helpdesk.1", "--text", "工单 4711 已处理", "--id", "ans-1", "--mention-sender")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "stored reply ans-1 to helpdesk.1 (app helpdesk, sequence 1, duplicate false)\n", r.stdout)
	s, err := f.js.Stream(ctx, f.topo.OutStream())
	require.NoError(t, err)
	m, err := s.GetMsg(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, f.topo.OutSubject("helpdesk"), m.Subject)
	env, err := envelope.Decode(m.Data)
	require.NoError(t, err)
	require.Equal(t, "helpdesk.1", env.ReplyTo)
	require.Equal(t, "@staff-1 工单 4711 已处理", env.Message.Text.Content)
	require.Equal(t, []string{"staff-1"}, env.At.UserIDs)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no event", args: []string{"reply", "--to", "helpdesk.5", "--text", "x"}, want: "inbound: no such event: helpdesk.5"},
		{name: "bad id", args: []string{"reply", "--to", "helpdesk", "--text", "x"}, want: "want <app>.<sequence>"},
		{name: "no text", args: []string{"reply", "--to", "helpdesk.1"}, want: "--to and --text are required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.run(t, "", tt.args...)
			require.ErrorContains(t, r.err, tt.want)
		})
	}
}
