package robotsim_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/signer"
	"github.com/stretchr/testify/require"
)

const (
	popoID     = "popo-hook-0123456789"
	popoSecret = "popo-secret"
)

func TestPOPOSuccess(t *testing.T) {
	clock := newFakeClock()
	srv := newServer(t, robotsim.Config{Now: clock.Now}, robotsim.Robot{
		Platform: robotsim.PlatformPOPO, Token: popoID, Secret: popoSecret, Keywords: []string{"alert"},
	})
	a1 := sendPOPO(t, srv, popoID, popoSecret, "alert one [img]https://x/y.png[/img]")
	a2 := sendPOPO(t, srv, popoID, popoSecret, "alert two")
	for _, a := range []answer{a1, a2} {
		require.Equal(t, 0, a.ErrCode)
		require.Equal(t, "ok", a.ErrMsg)
		require.NotNil(t, a.Data)
		require.NotEmpty(t, a.Data.MsgID)
	}
	require.NotEqual(t, a1.Data.MsgID, a2.Data.MsgID)

	got := srv.Received(popoID)
	require.Len(t, got, 2)
	require.Equal(t, "alert one [img]https://x/y.png[/img]", got[0].Content)
	require.Equal(t, "text", got[0].MsgType)
	require.Equal(t, a1.Data.MsgID, got[0].MessageID)
	require.Equal(t, a2.Data.MsgID, got[1].MessageID)
	require.Equal(t, clock.Now(), got[1].At)
	require.Equal(t, robotsim.Stats{Requests: 2, Accepted: 2}, srv.Stats(popoID))
}

func TestPOPONumericTimestampAndNoSecret(t *testing.T) {
	srv := newServer(t, robotsim.Config{},
		robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: popoID, Secret: popoSecret},
		robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "open"},
	)
	ts, sign := signer.POPO(popoSecret, time.Now())
	body := []byte(`{"message":"hi","timestamp":` + ts + `,"signData":"` + sign + `"}`)
	a := do(t, http.MethodPost, srv.WebhookURL(popoID), "application/json", body)
	require.Equal(t, 0, a.ErrCode, a.ErrMsg)
	require.Equal(t, 0, sendPOPO(t, srv, "open", "", "unsigned").ErrCode)
}

func TestPOPOErrors(t *testing.T) {
	now := time.Now()
	signedBody := func(message string, at time.Time, secret string) []byte {
		ts, sign := signer.POPO(secret, at)
		return []byte(`{"message":"` + message + `","timestamp":"` + ts + `","signData":"` + sign + `"}`)
	}
	tests := []struct {
		name        string
		id          string
		method      string
		contentType string
		body        []byte
		wantCode    int
		wantMsg     string
		wantStats   robotsim.Stats
	}{
		{name: "unknown id", id: "nope", body: signedBody("alert", now, popoSecret),
			wantCode: robotsim.POPOErrRobotNotFound, wantMsg: "robot not found"},
		{name: "GET", method: http.MethodGet,
			wantCode: robotsim.POPOErrBadRequest, wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
		{name: "text content type", contentType: "text/plain", body: signedBody("alert", now, popoSecret),
			wantCode: robotsim.POPOErrBadRequest, wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
		{name: "invalid JSON", body: []byte(`{"message"`),
			wantCode: robotsim.POPOErrBadRequest, wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
		{name: "unsigned", body: []byte(`{"message":"alert"}`),
			wantCode: robotsim.POPOErrSignature, wantMsg: "invalid timestamp",
			wantStats: robotsim.Stats{Requests: 1, Rejected: 1, SignatureFailures: 1}},
		{name: "old timestamp", body: signedBody("alert", now.Add(-2*time.Hour), popoSecret),
			wantCode: robotsim.POPOErrSignature, wantMsg: "invalid timestamp",
			wantStats: robotsim.Stats{Requests: 1, Rejected: 1, SignatureFailures: 1}},
		{name: "wrong secret", body: signedBody("alert", now, "other"),
			wantCode: robotsim.POPOErrSignature, wantMsg: "sign not match",
			wantStats: robotsim.Stats{Requests: 1, Rejected: 1, SignatureFailures: 1}},
		{name: "DingTalk-style signature", body: func() []byte {
			ts, sign := signer.DingTalk(popoSecret, now)
			return []byte(`{"message":"alert","timestamp":"` + ts + `","signData":"` + sign + `"}`)
		}(),
			wantCode: robotsim.POPOErrSignature, wantMsg: "sign not match",
			wantStats: robotsim.Stats{Requests: 1, Rejected: 1, SignatureFailures: 1}},
		{name: "message missing", body: func() []byte {
			ts, sign := signer.POPO(popoSecret, now)
			return []byte(`{"timestamp":"` + ts + `","signData":"` + sign + `"}`)
		}(),
			wantCode: robotsim.POPOErrBadRequest, wantMsg: "message",
			wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
		{name: "keywords not in content", body: signedBody("hello", now, popoSecret),
			wantCode: robotsim.POPOErrKeywords, wantMsg: "keywords not in content",
			wantStats: robotsim.Stats{Requests: 1, Rejected: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, robotsim.Config{}, robotsim.Robot{
				Platform: robotsim.PlatformPOPO, Token: popoID, Secret: popoSecret, Keywords: []string{"alert"},
			})
			id := popoID
			if tt.id != "" {
				id = tt.id
			}
			method := http.MethodPost
			if tt.method != "" {
				method = tt.method
			}
			ct := "application/json"
			if tt.contentType != "" {
				ct = tt.contentType
			}
			a := do(t, method, robotsim.WebhookURL(srv.URL, robotsim.PlatformPOPO, id), ct, tt.body)
			require.Equal(t, tt.wantCode, a.ErrCode, a.ErrMsg)
			require.Contains(t, a.ErrMsg, tt.wantMsg)
			require.Nil(t, a.Data)
			require.Equal(t, tt.wantStats, srv.Stats(popoID))
			require.Empty(t, srv.Received(popoID))
		})
	}
}
