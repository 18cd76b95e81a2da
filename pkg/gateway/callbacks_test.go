package gateway_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/gateway"
	"github.com/botrelay/botrelay/pkg/inbound"
	"github.com/botrelay/botrelay/pkg/stream"
)

// Vectors computed independently, in the shell:
//
//	python3 -c 'import hmac,hashlib,base64; s="helpdesk-secret-1"; t="1796162400000";
//	  print(base64.b64encode(hmac.new(s.encode(), (t+"\n"+s).encode(), hashlib.sha256).digest()).decode())'
//	printf '%s' $'1796162400000\nhelpdesk-secret-1' | openssl dgst -sha256 -hmac helpdesk-secret-1 -binary | base64
const (
	cbSecret = "helpdesk-secret-1"
	cbTS     = "1796162400000" // 2026-12-01T22:00:00Z
	cbSign   = "Xz7R1TuEx+5ugxsscsPUHUXUysSTy0GBoEi2obQqRUI="
	// The same timestamp signed with "SECabc+/=": right form, wrong app.
	cbOtherSign = "uMzoZmTdxxvCDF7lIV6Lq1/VfQDoMJWYKoxX42ErFSs="
)

var cbNow = time.UnixMilli(1796162400000).UTC()

const sessionToken = "SESSIONtoken0123456789"

func callbackBody(msgID string) string {
	return `{"msgtype":"text","text":{"content":" 查询工单 4711"},"msgId":"` + msgID + `","createAt":"1796162399000",` +
		`"conversationType":"2","conversationId":"cidGroup1","senderId":"uid-1","senderNick":"Li Lei","senderStaffId":"staff-1",` +
		`"chatbotUserId":"bot-1","sessionWebhook":"https://oapi.dingtalk.com/robot/sendBySession?session=` + sessionToken + `",` +
		`"sessionWebhookExpiredTime":1796164200000}`
}

// callbackFixture serves a gateway with the app "helpdesk", at cbNow.
func callbackFixture(t *testing.T, clock func() time.Time) fixture {
	t.Helper()
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js)
	return serve(t, js, topo, gateway.Options{
		Access: []gateway.Token{{Name: "all", SHA256: [32]byte{1}}},
		Now:    clock,
		Apps:   []gateway.App{{Name: "helpdesk", Secret: cbSecret}},
		Inbound: func(ctx context.Context, e *inbound.Event) (uint64, error) {
			return inbound.Publish(ctx, js, topo, e)
		},
	})
}

func inCount(t *testing.T, js jetstream.JetStream, topo stream.Topology) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), topo.InStream())
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

func TestCallbackVerification(t *testing.T) {
	f := callbackFixture(t, func() time.Time { return cbNow })
	tests := []struct {
		name   string
		path   string
		header []string
		want   int
	}{
		{name: "no headers", want: http.StatusUnauthorized},
		{name: "no sign", header: []string{"timestamp", cbTS}, want: http.StatusUnauthorized},
		{name: "no timestamp", header: []string{"sign", cbSign}, want: http.StatusUnauthorized},
		{name: "other app's sign", header: []string{"timestamp", cbTS, "sign", cbOtherSign}, want: http.StatusUnauthorized},
		{name: "not base64", header: []string{"timestamp", cbTS, "sign", "Xz7R1TuEx+5ugxsscsPUHUXUysSTy0GBoEi2obQqRUI"}, want: http.StatusUnauthorized},
		{name: "not base64 characters", header: []string{"timestamp", cbTS, "sign", "!!!!"}, want: http.StatusUnauthorized},
		{name: "URL-encoded sign", header: []string{"timestamp", cbTS, "sign", "Xz7R1TuEx%2B5ugxsscsPUHUXUysSTy0GBoEi2obQqRUI%3D"}, want: http.StatusUnauthorized},
		{name: "timestamp not a number", header: []string{"timestamp", "now", "sign", cbSign}, want: http.StatusUnauthorized},
		{name: "unknown app", path: "/v1/callbacks/dingtalk/nope", header: []string{"timestamp", cbTS, "sign", cbSign}, want: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = "/v1/callbacks/dingtalk/helpdesk"
			}
			r := f.post(t, path, callbackBody("msg-bad"), tt.header...)
			require.Equal(t, tt.want, r.status, "body %s", r.body)
		})
	}
	require.Zero(t, inCount(t, f.js, f.topo), "nothing stored for an unverified request")

	// Verified: stored, answered 200 with the event id; no bearer token.
	r := f.post(t, "/v1/callbacks/dingtalk/helpdesk", callbackBody("msg-1"), "timestamp", cbTS, "sign", cbSign)
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	require.JSONEq(t, `{"event_id":"helpdesk.1","sequence":1}`, string(r.body))
	require.NotContains(t, f.logs.String(), sessionToken)
	require.NotContains(t, f.logs.String(), cbSecret)

	// The same callback again is a replay: refused, nothing stored.
	r = f.post(t, "/v1/callbacks/dingtalk/helpdesk", callbackBody("msg-1"), "timestamp", cbTS, "sign", cbSign)
	require.Equal(t, http.StatusConflict, r.status, "body %s", r.body)
	require.Equal(t, uint64(1), inCount(t, f.js, f.topo))

	// Verified but not a callback: 422, nothing stored.
	r = f.post(t, "/v1/callbacks/dingtalk/helpdesk", `{"msgtype":"text"}`, "timestamp", cbTS, "sign", cbSign)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "body %s", r.body)
	require.Equal(t, uint64(1), inCount(t, f.js, f.topo))

	// The stored event.
	s, err := f.js.Stream(context.Background(), f.topo.InStream())
	require.NoError(t, err)
	m, err := s.GetMsg(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, f.topo.InSubject("helpdesk"), m.Subject)
	require.Equal(t, "helpdesk/msg-1", m.Header.Get(jetstream.MsgIDHeader))
	ev, err := inbound.Decode(m.Data, m.Sequence)
	require.NoError(t, err)
	require.Equal(t, inbound.Summary{ID: "helpdesk.1", App: "helpdesk", MsgType: "text", Text: "查询工单 4711",
		ConversationID: "cidGroup1", ConversationType: "2", SenderID: "uid-1", SenderNick: "Li Lei", SenderStaffID: "staff-1",
		CreatedAt: time.UnixMilli(1796162399000).UTC(), SessionWebhookExpiresAt: time.UnixMilli(1796164200000).UTC()}, ev.Summary())
	require.Equal(t, "https://oapi.dingtalk.com/robot/sendBySession?session="+sessionToken, ev.SessionWebhook)
}

// The timestamp must be within an hour of the gateway's clock, either way.
func TestCallbackSkew(t *testing.T) {
	var clock time.Time
	f := callbackFixture(t, func() time.Time { return clock })
	tests := []struct {
		name  string
		clock time.Time
		want  int
	}{
		{name: "stale", clock: cbNow.Add(time.Hour + time.Second), want: http.StatusUnauthorized},
		{name: "future", clock: cbNow.Add(-time.Hour - time.Second), want: http.StatusUnauthorized},
		{name: "just under an hour late", clock: cbNow.Add(59 * time.Minute), want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock = tt.clock
			r := f.post(t, "/v1/callbacks/dingtalk/helpdesk", callbackBody("msg-skew"), "timestamp", cbTS, "sign", cbSign)
			require.Equal(t, tt.want, r.status, "body %s", r.body)
		})
	}
	require.Equal(t, uint64(1), inCount(t, f.js, f.topo))
}
