package robotsim_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/gateway"
	"github.com/botrelay/botrelay/pkg/inbound"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/signer"
)

// The simulator's callbacks pass the real gateway's verification, and its
// session webhooks record what is posted to them.
func TestCallbacksThroughTheGateway(t *testing.T) {
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js)
	ctx := context.Background()
	require.NoError(t, topo.Ensure(ctx, js))
	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	g, err := gateway.New(pub, gateway.Options{
		Access: []gateway.Token{{Name: "t", SHA256: sha256.Sum256([]byte("tok"))}},
		Apps:   []gateway.App{{Name: "helpdesk", Secret: "app-secret"}},
		Inbound: func(ctx context.Context, e *inbound.Event) (uint64, error) {
			return inbound.Publish(ctx, js, topo, e)
		},
	})
	require.NoError(t, err)
	gw := httptest.NewServer(g)
	t.Cleanup(gw.Close)
	sim := robotsim.NewServer(robotsim.Config{})
	t.Cleanup(sim.Close)
	require.NoError(t, sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: "sess-1"}))

	cb := robotsim.Callback{MsgID: "m1", Text: "/rollback shop", ConversationID: "cid1", SenderID: "uid-1",
		SessionWebhook: robotsim.SessionWebhookURL(sim.URL, "sess-1"), SessionExpires: time.Now().Add(time.Hour)}
	status, body, err := robotsim.SendCallback(ctx, nil, gw.URL+"/v1/callbacks/dingtalk/helpdesk", "app-secret", cb, time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.JSONEq(t, `{"event_id":"helpdesk.1","sequence":1}`, string(body))
	status, _, err = robotsim.SendCallback(ctx, nil, gw.URL+"/v1/callbacks/dingtalk/helpdesk", "other-secret", cb, time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, status)

	ev, err := inbound.Get(ctx, js, topo, "helpdesk.1")
	require.NoError(t, err)
	require.Equal(t, "/rollback shop", ev.Text)
	resp, err := http.Post(ev.SessionWebhook, "application/json", bytes.NewReader([]byte(`{"msgtype":"text","text":{"content":"rolled back"},"at":{"atUserIds":["uid-1"]}}`)))
	require.NoError(t, err)
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.JSONEq(t, `{"errcode":0,"errmsg":"ok"}`, string(answer))
	got := sim.Received("sess-1")
	require.Len(t, got, 1)
	require.Equal(t, "rolled back", got[0].Content)
	require.Equal(t, []string{"uid-1"}, got[0].AtUserIDs)
}

// A service's callback endpoint verifies what the simulator sends.
func ExampleSendCallback() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := signer.VerifyDingTalkCallback("app-secret", r.Header.Get("timestamp"), r.Header.Get("sign"), time.Now())
		fmt.Fprint(w, err == nil)
	}))
	defer srv.Close()
	cb := robotsim.Callback{MsgID: "m1", Text: "查询工单 4711", ConversationID: "cid1",
		SessionWebhook: robotsim.SessionWebhookURL("http://127.0.0.1:1", "s"), SessionExpires: time.Now().Add(time.Hour)}
	status, body, err := robotsim.SendCallback(context.Background(), nil, srv.URL, "app-secret", cb, time.Now())
	fmt.Println(status, string(body), err)
	// Output: 200 true <nil>
}
