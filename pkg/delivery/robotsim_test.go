package delivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/stretchr/testify/require"
)

// The default POPO rules mirror the simulator's codes.
func TestPOPOCodesMatchSimulator(t *testing.T) {
	require.Equal(t, robotsim.POPOErrRobotNotFound, delivery.POPOErrRobotNotFound)
	require.Equal(t, robotsim.POPOErrBadRequest, delivery.POPOErrBadRequest)
	require.Equal(t, robotsim.POPOErrSignature, delivery.POPOErrSignature)
	require.Equal(t, robotsim.POPOErrKeywords, delivery.POPOErrKeywords)
	require.Equal(t, robotsim.POPOErrThrottled, delivery.POPOErrThrottled)
	require.Equal(t, robotsim.PlatformDingTalk, delivery.PlatformDingTalk)
	require.Equal(t, robotsim.PlatformPOPO, delivery.PlatformPOPO)
	require.Equal(t, robotsim.DingTalkMaxBody, delivery.DingTalkMaxBody)
}

func simEnv(id string, m envelope.Message) *envelope.Envelope {
	return &envelope.Envelope{V: 1, ID: id, Robot: "sim", Message: m}
}

// TestAgainstSimulator delivers to pkg/robotsim, which verifies the real
// signatures (against the real clock) and answers as the platforms do.
func TestAgainstSimulator(t *testing.T) {
	srv := robotsim.NewServer(robotsim.Config{})
	defer srv.Close()
	const (
		dtToken   = "dtSimToken0123456789"
		dtSecret  = "SECdtSimSecret0123456789"
		popoHook  = "popoSimHook0123456789"
		popoSec   = "popoSimSecret0123456789"
		limited   = "dtLimitedToken0123456"
		popoLimit = "popoLimitedHook012345"
	)
	for _, r := range []robotsim.Robot{
		{Platform: robotsim.PlatformDingTalk, Token: dtToken, Secret: dtSecret, Keywords: []string{"alert"}},
		{Platform: robotsim.PlatformPOPO, Token: popoHook, Secret: popoSec, Keywords: []string{"alert"}},
		{Platform: robotsim.PlatformDingTalk, Token: limited, Limit: 2},
		{Platform: robotsim.PlatformPOPO, Token: popoLimit, Limit: 2},
	} {
		require.NoError(t, srv.AddRobot(r))
	}
	dt := delivery.Robot{Name: "dt", Platform: delivery.PlatformDingTalk, Webhook: srv.WebhookURL(dtToken), Secret: dtSecret}
	popo := delivery.Robot{Name: "popo", Platform: delivery.PlatformPOPO, Webhook: srv.WebhookURL(popoHook), Secret: popoSec}
	d, err := delivery.New()
	require.NoError(t, err)
	ctx := context.Background()

	kinds := []envelope.Message{
		{Text: &envelope.Text{Content: "alert: disk full"}},
		{Markdown: &envelope.Markdown{Title: "alert", Text: "**alert** cpu"}},
		{Link: &envelope.Link{Title: "alert", Text: "see", MessageURL: "https://example.com/x"}},
		{ActionCard: &envelope.ActionCard{Title: "alert", Text: "act", SingleTitle: "Go", SingleURL: "https://example.com/go"}},
		{ActionCard: &envelope.ActionCard{Title: "alert", Text: "act", Buttons: []envelope.Button{{Title: "A", ActionURL: "https://example.com/a"}}}},
		{FeedCard: &envelope.FeedCard{Links: []envelope.FeedLink{{Title: "alert one", MessageURL: "https://example.com/1"}}}},
	}
	for i, m := range kinds {
		for _, robot := range []delivery.Robot{dt, popo} {
			env := simEnv(fmt.Sprintf("kind-%d", i), m)
			res := d.Deliver(ctx, robot, env)
			require.Equal(t, delivery.Success, res.Outcome, "%s kind %d: %+v", robot.Platform, i, res)
			if robot.Platform == delivery.PlatformPOPO {
				require.NotEmpty(t, res.MessageID)
			}
		}
	}
	require.Len(t, srv.Received(dtToken), len(kinds))
	require.Len(t, srv.Received(popoHook), len(kinds))
	require.Equal(t, "kind-0", srv.Received(dtToken)[0].MsgUUID)

	// Mentions reach the platform in "at" and in the content.
	env := simEnv("mention", envelope.Message{Text: &envelope.Text{Content: "alert"}})
	env.At = &envelope.At{Mobiles: []string{"13800000009"}}
	require.Equal(t, delivery.Success, d.Deliver(ctx, dt, env).Outcome)
	got := srv.Received(dtToken)[len(kinds)]
	require.Equal(t, []string{"13800000009"}, got.AtMobiles)
	require.Contains(t, got.Content, "@13800000009")

	// A retry with the same envelope id is not posted twice (msgUuid).
	require.Equal(t, delivery.Success, d.Deliver(ctx, dt, env).Outcome)
	require.Equal(t, 1, srv.Stats(dtToken).Duplicates)

	alert := simEnv("e", envelope.Message{Text: &envelope.Text{Content: "alert"}})
	skewed, err := delivery.New(delivery.WithClock(func() time.Time { return time.Now().Add(-2 * time.Hour) }))
	require.NoError(t, err)
	wrong := func(r delivery.Robot) delivery.Robot { r.Secret = "wrong-secret-value"; return r }
	unknown := func(r delivery.Robot, token string) delivery.Robot {
		r.Webhook = robotsim.WebhookURL(srv.URL, r.Platform, token)
		return r
	}

	tests := []struct {
		name   string
		d      *delivery.Deliverer
		robot  delivery.Robot
		env    *envelope.Envelope
		want   delivery.Outcome
		reason string
	}{
		{"dingtalk sign not match", d, wrong(dt), alert, delivery.Permanent, "sign not match"},
		{"popo sign not match", d, wrong(popo), alert, delivery.Permanent, "sign not match"},
		{"dingtalk stale timestamp", skewed, dt, alert, delivery.Permanent, "invalid timestamp (check the clock)"},
		{"popo stale timestamp", skewed, popo, alert, delivery.Permanent, "invalid timestamp (check the clock)"},
		{"dingtalk keywords refused by platform", d, dt, simEnv("k", envelope.Message{Text: &envelope.Text{Content: "none"}}), delivery.Permanent, "keywords not in content"},
		{"popo keywords refused by platform", d, popo, simEnv("k", envelope.Message{Text: &envelope.Text{Content: "none"}}), delivery.Permanent, "keywords not in content"},
		{"dingtalk unknown token", d, unknown(dt, "nosuchtoken123456"), alert, delivery.Permanent, "token does not exist"},
		{"popo unknown hook", d, unknown(popo, "nosuchhook1234567"), alert, delivery.Permanent, "robot not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.d.Deliver(ctx, tt.robot, tt.env)
			require.Equal(t, tt.want, res.Outcome, "%+v", res)
			require.Equal(t, tt.reason, res.Reason)
			requireNoSecrets(t, res, dtToken, dtSecret, popoHook, popoSec, "nosuchtoken123456", "nosuchhook1234567")
		})
	}

	t.Run("throttled", func(t *testing.T) {
		for _, token := range []string{limited, popoLimit} {
			robot := delivery.Robot{Name: token, Platform: delivery.PlatformDingTalk, Webhook: srv.WebhookURL(token)}
			if strings.HasPrefix(token, "popo") {
				robot.Platform = delivery.PlatformPOPO
			}
			var outcomes []delivery.Outcome
			for i := 0; i < 4; i++ {
				outcomes = append(outcomes, d.Deliver(ctx, robot, simEnv(fmt.Sprint("t", i), envelope.Message{Text: &envelope.Text{Content: "x"}})).Outcome)
			}
			require.Equal(t, []delivery.Outcome{delivery.Success, delivery.Success, delivery.Throttled, delivery.Throttled}, outcomes, robot.Platform)
		}
	})

	t.Run("faults", func(t *testing.T) {
		for _, tt := range []struct {
			name  string
			fault robotsim.Fault
			want  delivery.Outcome
		}{
			{"503", robotsim.Fault{Status: 503}, delivery.Retryable},
			{"429", robotsim.Fault{Status: 429}, delivery.Wait},
			{"busy", robotsim.Fault{Body: `{"errcode":-1,"errmsg":"system busy"}`}, delivery.Retryable},
			{"quota", robotsim.Fault{Body: `{"errcode":90030,"errmsg":"webhook over limit"}`}, delivery.Wait},
			{"gateway", robotsim.Fault{Body: `{"status":1111,"wait":5}`}, delivery.Wait},
			{"dropped", robotsim.Fault{Drop: true}, delivery.Retryable},
			{"400", robotsim.Fault{Status: 400}, delivery.Permanent},
		} {
			t.Run(tt.name, func(t *testing.T) {
				srv.InjectFault(dtToken, tt.fault)
				res := d.Deliver(ctx, dt, alert)
				require.Equal(t, tt.want, res.Outcome, "%+v", res)
				requireNoSecrets(t, res, dtToken, dtSecret)
			})
		}
	})
}

func requireNoSecrets(t *testing.T, res delivery.Result, secrets ...string) {
	t.Helper()
	dump := fmt.Sprintf("%+v", res)
	for _, s := range secrets {
		require.NotContains(t, dump, s)
	}
}

// TestKeywordPreCheckAgreesWithSimulator checks that CheckKeywords (the
// worker's pre-check) looks for DingTalk keywords where the simulator
// does: an actionCard's title and text count, singleTitle and button
// titles do not. Each card is also posted to the simulator directly,
// bypassing the pre-check, so both sides of the agreement are observed.
func TestKeywordPreCheckAgreesWithSimulator(t *testing.T) {
	srv := robotsim.NewServer(robotsim.Config{})
	defer srv.Close()
	const token = "keywordAgreeToken0123"
	require.NoError(t, srv.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: token, Keywords: []string{"Approve"}}))
	robot := delivery.Robot{Name: "kw", Platform: delivery.PlatformDingTalk, Webhook: srv.WebhookURL(token), Keywords: []string{"Approve"}}
	d, err := delivery.New()
	require.NoError(t, err)
	const link = "https://example.com/a"
	tests := []struct {
		name   string
		card   envelope.ActionCard
		accept bool
	}{
		{"keyword in title", envelope.ActionCard{Title: "Approve 1.2", Text: "ready", SingleTitle: "Go", SingleURL: link}, true},
		{"keyword in text", envelope.ActionCard{Title: "Release 1.2", Text: "Approve?", Buttons: []envelope.Button{{Title: "Go", ActionURL: link}}}, true},
		{"keyword in singleTitle only", envelope.ActionCard{Title: "Release 1.2", Text: "ready", SingleTitle: "Approve", SingleURL: link}, false},
		{"keyword in button title only", envelope.ActionCard{Title: "Release 1.2", Text: "ready", Buttons: []envelope.Button{{Title: "Approve", ActionURL: link}}}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			card := tt.card
			env := simEnv(fmt.Sprint("kw-", i), envelope.Message{ActionCard: &card})
			env.CreatedAt = time.Now()
			require.NoError(t, env.Validate())
			pre := delivery.CheckKeywords(robot, env)
			require.Equal(t, tt.accept, pre == nil, "pre-check: %v", pre)

			// The simulator's own verdict on the same card.
			btns := []map[string]string{}
			for _, b := range card.Buttons {
				btns = append(btns, map[string]string{"title": b.Title, "actionURL": b.ActionURL})
			}
			body, err := json.Marshal(map[string]any{"msgtype": "actionCard", "actionCard": map[string]any{
				"title": card.Title, "text": card.Text, "singleTitle": card.SingleTitle, "singleURL": card.SingleURL, "btns": btns,
			}})
			require.NoError(t, err)
			resp, err := http.Post(srv.WebhookURL(token), "application/json", bytes.NewReader(body))
			require.NoError(t, err)
			raw, err := io.ReadAll(resp.Body)
			require.NoError(t, resp.Body.Close())
			require.NoError(t, err)
			sim := d.Classify(delivery.PlatformDingTalk, delivery.Response{StatusCode: resp.StatusCode, Body: raw})
			require.Equal(t, tt.accept, sim.Outcome == delivery.Success, "simulator: %+v", sim)

			res := d.Deliver(context.Background(), robot, simEnv(fmt.Sprint("kw-deliver-", i), envelope.Message{ActionCard: &card}))
			require.Equal(t, tt.accept, res.Outcome == delivery.Success, "deliver: %+v", res)
		})
	}
}
