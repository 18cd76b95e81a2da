package robotsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/botrelay/botrelay/pkg/signer"
)

// sessionPath is the path of the DingTalk session webhooks the simulator
// serves: POST /robot/sendBySession?session=S, S a registered robot's
// token (without a secret, as sessions are not signed).
const sessionPath = "/robot/sendBySession"

// SessionWebhookURL builds the session webhook of session on a simulator
// at baseURL. Register a DingTalk robot whose Token is session (and no
// Secret): the replies posted there are recorded like any message
// ([Sim.Received] of session).
func SessionWebhookURL(baseURL, session string) string {
	return baseURL + sessionPath + "?session=" + url.QueryEscape(session)
}

// Callback is a DingTalk enterprise-robot callback, as DingTalk POSTs it
// to a robot's message address.
type Callback struct {
	MsgID            string
	Text             string
	ConversationID   string
	ConversationType string // "1" single chat, "2" group; default "2"
	SenderID         string
	SenderNick       string
	SenderStaffID    string
	// SessionWebhook is the reply address (see [SessionWebhookURL]);
	// SessionExpires when it stops accepting replies.
	SessionWebhook string
	SessionExpires time.Time
}

// Body returns the callback's JSON body, as DingTalk writes it (text
// content after a space, times in milliseconds).
func (c Callback) Body(now time.Time) []byte {
	ct := c.ConversationType
	if ct == "" {
		ct = "2"
	}
	b, _ := json.Marshal(map[string]any{
		"msgtype": "text", "text": map[string]string{"content": " " + c.Text}, "msgId": c.MsgID,
		"createAt": now.UnixMilli(), "conversationType": ct, "conversationId": c.ConversationID,
		"senderId": c.SenderID, "senderNick": c.SenderNick, "senderStaffId": c.SenderStaffID, "chatbotUserId": "robotsim",
		"sessionWebhook": c.SessionWebhook, "sessionWebhookExpiredTime": c.SessionExpires.UnixMilli(),
	})
	return b
}

// SendCallback POSTs c to target signed with appSecret at now, as DingTalk
// does (headers timestamp and sign), and returns the answer's status and
// body.
func SendCallback(ctx context.Context, client *http.Client, target, appSecret string, c Callback, now time.Time) (int, []byte, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(c.Body(now)))
	if err != nil {
		return 0, nil, fmt.Errorf("robotsim: callback: %w", err)
	}
	ts, sign := signer.DingTalk(appSecret, now)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("timestamp", ts)
	req.Header.Set("sign", sign)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("robotsim: callback: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("robotsim: callback answer: %w", err)
	}
	return resp.StatusCode, body, nil
}
