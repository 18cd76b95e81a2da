package gateway_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/gateway"
	"github.com/botrelay/botrelay/pkg/inbound"
)

func TestReplies(t *testing.T) {
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js)
	f := serve(t, js, topo, gateway.Options{
		Access: []gateway.Token{
			{Name: "all", SHA256: sha256.Sum256([]byte("tok-all"))},
			{Name: "scoped", SHA256: sha256.Sum256([]byte("tok-scoped")), Robots: []string{"team-a-*"}},
		},
		Now:  func() time.Time { return cbNow },
		Apps: []gateway.App{{Name: "helpdesk", Secret: cbSecret}},
		Inbound: func(ctx context.Context, e *inbound.Event) (uint64, error) {
			return inbound.Publish(ctx, js, topo, e)
		},
		Events: func(ctx context.Context, id string) (*inbound.Event, error) { return inbound.Get(ctx, js, topo, id) },
	})
	r := f.post(t, "/v1/callbacks/dingtalk/helpdesk", callbackBody("msg-1"), "timestamp", cbTS, "sign", cbSign)
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)

	tests := []struct {
		name, body, token string
		want              int
	}{
		{name: "no token", body: `{"reply_to":"helpdesk.1","text":"ok"}`, want: http.StatusUnauthorized},
		{name: "outside the scope", body: `{"reply_to":"helpdesk.1","text":"ok"}`, token: "tok-scoped", want: http.StatusForbidden},
		{name: "no such event", body: `{"reply_to":"helpdesk.7","text":"ok"}`, token: "tok-all", want: http.StatusNotFound},
		{name: "no reply_to", body: `{"text":"ok"}`, token: "tok-all", want: http.StatusUnprocessableEntity},
		{name: "a robot", body: `{"reply_to":"helpdesk.1","robot":"ops","text":"ok"}`, token: "tok-all", want: http.StatusUnprocessableEntity},
		{name: "reply_to on messages", body: `{"reply_to":"helpdesk.1","robot":"ops","text":"ok"}`, token: "tok-all", want: http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/v1/replies"
			if tt.name == "reply_to on messages" {
				path = "/v1/messages"
			}
			var hdr []string
			if tt.token != "" {
				hdr = bearer(tt.token)
			}
			r := f.post(t, path, tt.body, hdr...)
			require.Equal(t, tt.want, r.status, "body %s", r.body)
		})
	}

	r = f.post(t, "/v1/replies", `{"reply_to":"helpdesk.1","id":"ans-1","text":"工单 4711 已处理","mention_sender":true}`, bearer("tok-all")...)
	res := accepted(t, r)
	require.Equal(t, gateway.Result{ID: "ans-1", Robot: "helpdesk", Sequence: 1}, res)
	s, err := js.Stream(context.Background(), topo.OutStream())
	require.NoError(t, err)
	m, err := s.GetMsg(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, topo.OutSubject("helpdesk"), m.Subject)
	env, err := envelope.Decode(m.Data)
	require.NoError(t, err)
	require.Equal(t, "helpdesk.1", env.ReplyTo)
	require.Equal(t, "@staff-1 工单 4711 已处理", env.Message.Text.Content)
	require.Equal(t, &envelope.At{UserIDs: []string{"staff-1"}}, env.At)
	require.NotContains(t, string(m.Data), sessionToken)
}
