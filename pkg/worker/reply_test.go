package worker_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/gateway"
	"github.com/botrelay/botrelay/pkg/inbound"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/worker"
)

// storeEvent stores a callback of app helpdesk whose session webhook is
// the simulator's session, expiring at exp, and returns its event.
func storeEvent(t *testing.T, r *rig, msgID, session string, exp time.Time) *inbound.Event {
	t.Helper()
	require.NoError(t, r.sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: session}))
	cb := robotsim.Callback{MsgID: msgID, Text: "查询工单 4711", ConversationID: "cid-" + session, SenderID: "uid-1",
		SenderStaffID: "staff-1", SessionWebhook: robotsim.SessionWebhookURL(r.sim.URL, session), SessionExpires: exp}
	e, err := inbound.ParseDingTalk("helpdesk", cb.Body(time.Now()), time.Now())
	require.NoError(t, err)
	_, err = inbound.Publish(context.Background(), r.js, r.topo, e)
	require.NoError(t, err)
	return e
}

func TestRepliesGoToTheSessionWebhook(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.robots = append(r.robots, worker.Robot{Robot: delivery.Robot{Name: "helpdesk", Platform: robotsim.PlatformDingTalk},
		Limit: dingLimit, CoolOff: time.Second, Replies: true})
	live := storeEvent(t, r, "m1", "SESSIONlive0001", time.Now().Add(time.Hour))
	gone := storeEvent(t, r, "m2", "SESSIONgone0002", time.Now().Add(-time.Second))

	reply := envelope.New("helpdesk", text("@staff-1 工单 4711: 已处理"))
	reply.ReplyTo, reply.At = live.ID, &envelope.At{UserIDs: []string{"staff-1"}}
	late := envelope.New("helpdesk", text("too late"))
	late.ReplyTo = gone.ID
	orphan := envelope.New("helpdesk", text("to nothing"))
	orphan.ReplyTo = "helpdesk.99"
	r.publish(reply)
	r.publish(late)
	r.publish(orphan)

	logs := &testenv.SyncBuffer{}
	r.startWorker(func(c *worker.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	testenv.Eventually(t, 10*time.Second, func() bool { return len(r.sim.Received("SESSIONlive0001")) == 1 }, "the reply arrived")
	got := r.sim.Received("SESSIONlive0001")
	require.Len(t, got, 1)
	require.Equal(t, "@staff-1 工单 4711: 已处理", got[0].Content)
	require.Equal(t, []string{"staff-1"}, got[0].AtUserIDs)

	dls := r.waitDead(2, 10*time.Second)
	reasons := map[string]deadletter.Reason{}
	for _, d := range dls {
		reasons[d.Record.Envelope.ID] = d.Record.Reason
		b, err := json.Marshal(d.Record)
		require.NoError(t, err)
		require.NotContains(t, string(b), "SESSION", "the session webhook is a credential")
	}
	require.Equal(t, map[string]deadletter.Reason{late.ID: deadletter.ReasonExpired, orphan.ID: deadletter.ReasonNoEvent}, reasons)
	require.Empty(t, r.sim.Received("SESSIONgone0002"))
	require.Contains(t, logs.String(), "dead-lettered")
	require.NotContains(t, logs.String(), "SESSION", "the session webhook is never logged")
}

// The whole loop over HTTP: the simulator sends a signed callback to the
// real gateway, a reply is posted to POST /v1/replies, the worker
// delivers it to the simulator's session webhook, mentioning the sender.
func TestCallbackToReplyOverHTTP(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	r.robots = append(r.robots, worker.Robot{Robot: delivery.Robot{Name: "helpdesk", Platform: robotsim.PlatformDingTalk},
		Limit: dingLimit, CoolOff: time.Second, Replies: true})
	require.NoError(t, r.sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: "SESSIONe2e"}))
	g, err := gateway.New(r.pub, gateway.Options{
		Access: []gateway.Token{{Name: "t", SHA256: sha256.Sum256([]byte("tok"))}},
		Apps:   []gateway.App{{Name: "helpdesk", Secret: "app-secret"}},
		Inbound: func(ctx context.Context, e *inbound.Event) (uint64, error) {
			return inbound.Publish(ctx, r.js, r.topo, e)
		},
		Events: func(ctx context.Context, id string) (*inbound.Event, error) {
			return inbound.Get(ctx, r.js, r.topo, id)
		},
	})
	require.NoError(t, err)
	gw := httptest.NewServer(g)
	t.Cleanup(gw.Close)

	cb := robotsim.Callback{MsgID: "m1", Text: "查询工单 4711", ConversationID: "cid1", SenderID: "uid-1", SenderStaffID: "staff-1",
		SessionWebhook: robotsim.SessionWebhookURL(r.sim.URL, "SESSIONe2e"), SessionExpires: time.Now().Add(time.Hour)}
	status, body, err := robotsim.SendCallback(context.Background(), nil, gw.URL+"/v1/callbacks/dingtalk/helpdesk", "app-secret", cb, time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, "%s", body)

	req, err := http.NewRequest(http.MethodPost, gw.URL+"/v1/replies",
		strings.NewReader(`{"reply_to":"helpdesk.1","text":"工单 4711 已处理","mention_sender":true}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	r.startWorker(nil)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(r.sim.Received("SESSIONe2e")) == 1 }, "the reply arrived")
	got := r.sim.Received("SESSIONe2e")
	require.Len(t, got, 1)
	require.Equal(t, "@staff-1 工单 4711 已处理", got[0].Content)
	require.Equal(t, []string{"staff-1"}, got[0].AtUserIDs)
}
