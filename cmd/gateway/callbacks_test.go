package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/inbound"
	"github.com/botrelay/botrelay/pkg/signer"
)

const appSecret = "helpdesk-app-secret"

// postCallback sends a callback signed now with secret.
func postCallback(t *testing.T, base, app, msgID, secret string) (int, string) {
	t.Helper()
	ts, sign := signer.DingTalk(secret, time.Now())
	body := `{"msgtype":"text","text":{"content":" 查询工单 ` + msgID + `"},"msgId":"` + msgID + `","conversationId":"cid1",` +
		`"senderId":"uid-1","sessionWebhook":"https://oapi.dingtalk.com/robot/sendBySession?session=SESS","sessionWebhookExpiredTime":` +
		`1796164200000}`
	req, err := http.NewRequest(http.MethodPost, base+"/v1/callbacks/dingtalk/"+app, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("timestamp", ts)
	req.Header.Set("sign", sign)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// A callback taken before the gateway restarts is consumed after it:
// nothing is lost, and a replay is still refused by the new process.
func TestCallbacksSurviveRestart(t *testing.T) {
	url := testenv.NATSURL(t)
	_, js := testenv.Connect(t, url)
	topo := testenv.Topology(t, js)
	ctx := context.Background()
	require.NoError(t, topo.Ensure(ctx, js))
	cfg := testenv.WriteFile(t, "apps.yaml", "prefix: "+topo.Prefix+"\napps:\n  - {name: helpdesk, platform: dingtalk, app_secret_env: HELPDESK_APP_SECRET}\n")
	vars := map[string]string{cli.EnvNATSURL: url, "GW_TOKENS": token1, "HELPDESK_APP_SECRET": appSecret}
	args := []string{"--listen", "127.0.0.1:0", "--token-env", "GW_TOKENS", "--config", cfg}

	p := startRun(t, args, vars)
	status, body := postCallback(t, p.base, "helpdesk", "m1", appSecret)
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"event_id":"helpdesk.1","sequence":1}`, body)
	status, body = postCallback(t, p.base, "helpdesk", "m0", "wrong-secret")
	require.Equal(t, http.StatusUnauthorized, status, body)
	require.NoError(t, p.stop(t))
	require.NotContains(t, p.stderr.String(), appSecret)
	require.NotContains(t, p.stderr.String(), "SESS\"")

	p = startRun(t, args, vars)
	status, body = postCallback(t, p.base, "helpdesk", "m1", appSecret)
	require.Equal(t, http.StatusConflict, status, "a replay after the restart: %s", body)
	status, body = postCallback(t, p.base, "helpdesk", "m2", appSecret)
	require.Equal(t, http.StatusOK, status, body)
	status, _ = postCallback(t, p.base, "nope", "m3", appSecret)
	require.Equal(t, http.StatusNotFound, status)
	require.NoError(t, p.stop(t))

	var mu sync.Mutex
	var got []string
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- inbound.Subscribe(sctx, js, topo, "helpdesk", func(_ context.Context, m *inbound.Msg) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, m.Event.ID+" "+m.Event.Text)
			return nil
		})
	}()
	testenv.Eventually(t, 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 }, "both events")
	cancel()
	<-done
	require.Equal(t, []string{"helpdesk.1 查询工单 m1", "helpdesk.2 查询工单 m2"}, got)
}
