package delivery_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/stretchr/testify/require"
)

// The Feishu and WeCom rules know the simulator's codes.
func TestFeishuWeComCodesMatchSimulator(t *testing.T) {
	require.Equal(t, robotsim.FeishuErrFrequency, delivery.FeishuErrFrequency)
	require.Equal(t, robotsim.FeishuErrBadRequest, delivery.FeishuErrBadRequest)
	require.Equal(t, robotsim.FeishuErrSign, delivery.FeishuErrSign)
	require.Equal(t, robotsim.FeishuErrKeywords, delivery.FeishuErrKeywords)
	require.Equal(t, robotsim.FeishuErrToken, delivery.FeishuErrToken)
	require.Equal(t, robotsim.FeishuErrMsgType, delivery.FeishuErrMsgType)
	require.Equal(t, robotsim.WeComErrFrequency, delivery.WeComErrFrequency)
	require.Equal(t, robotsim.WeComErrInvalidURL, delivery.WeComErrInvalidURL)
	require.Equal(t, robotsim.WeComErrTooLong, delivery.WeComErrTooLong)
	require.Equal(t, robotsim.PlatformFeishu, delivery.PlatformFeishu)
	require.Equal(t, robotsim.PlatformWeCom, delivery.PlatformWeCom)
}

var allKinds = []envelope.Message{
	{Text: &envelope.Text{Content: "alert: disk full"}},
	{Markdown: &envelope.Markdown{Title: "alert", Text: "**alert** cpu"}},
	{Link: &envelope.Link{Title: "alert", Text: "see", MessageURL: "https://example.com/x", PicURL: "https://example.com/p.png"}},
	{ActionCard: &envelope.ActionCard{Title: "alert", Text: "act", SingleTitle: "Go", SingleURL: "https://example.com/go"}},
	{ActionCard: &envelope.ActionCard{Title: "alert", Text: "act", Buttons: []envelope.Button{{Title: "A", ActionURL: "https://example.com/a"}}}},
	{FeedCard: &envelope.FeedCard{Links: []envelope.FeedLink{{Title: "alert one", MessageURL: "https://example.com/1"}}}},
}

// TestFeishuAgainstSimulator: every kind, signed in the body and checked by
// the simulator's own code against the real clock; keywords refused
// before sending; the per-second window's 9499 and the minute's 11232
// both Throttled; a body over 20 KB refused before sending.
func TestFeishuAgainstSimulator(t *testing.T) {
	clk := &manualClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv := robotsim.NewServer(robotsim.Config{Now: clk.Now})
	defer srv.Close()
	const token, secret = "fsSimToken0123456789", "SECfsSimSecret01234"
	require.NoError(t, srv.AddRobot(robotsim.Robot{Platform: robotsim.PlatformFeishu, Token: token, Secret: secret, Keywords: []string{"alert"}}))
	robot := delivery.Robot{Name: "fs", Platform: delivery.PlatformFeishu, Webhook: srv.WebhookURL(token), Secret: secret, Keywords: []string{"alert"}}
	d, err := delivery.New()
	require.NoError(t, err)
	ctx := context.Background()

	for i, m := range allKinds {
		clk.Advance(time.Second)
		res := d.Deliver(ctx, robot, simEnv(fmt.Sprintf("kind-%d", i), m))
		require.Equal(t, delivery.Success, res.Outcome, "kind %d: %+v", i, res)
	}
	require.Len(t, srv.Received(token), len(allKinds))

	res := d.Deliver(ctx, robot, simEnv("nokw", envelope.Message{Text: &envelope.Text{Content: "hello"}}))
	require.Equal(t, delivery.Permanent, res.Outcome)
	require.ErrorIs(t, res.Err, delivery.ErrMissingKeyword)

	wrong := robot
	wrong.Secret = "SECwrong"
	res = d.Deliver(ctx, wrong, simEnv("badsig", allKinds[0]))
	require.Equal(t, delivery.Permanent, res.Outcome)
	require.Equal(t, delivery.FeishuErrSign, res.ErrCode)
	require.NotContains(t, fmt.Sprint(res), token)

	clk.Advance(time.Second)
	var outcomes []delivery.Outcome
	for i := range 6 {
		outcomes = append(outcomes, d.Deliver(ctx, robot, simEnv(fmt.Sprintf("burst-%d", i), allKinds[0])).Outcome)
	}
	require.Equal(t, delivery.Throttled, outcomes[5], "the 6th in one second: 9499 too many request")

	big := simEnv("big", envelope.Message{Text: &envelope.Text{Content: "alert " + strings.Repeat("x", delivery.FeishuMaxBody)}})
	before := srv.Stats(token).Requests
	res = d.Deliver(ctx, robot, big)
	require.Equal(t, delivery.Permanent, res.Outcome)
	require.ErrorIs(t, res.Err, delivery.ErrTooLong)
	require.Equal(t, before, srv.Stats(token).Requests, "refused without a request")
}

// TestWeComAgainstSimulator: every kind; 45009 Throttled; a text over
// 2,048 bytes refused before sending; the key never in a result.
func TestWeComAgainstSimulator(t *testing.T) {
	clk := &manualClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv := robotsim.NewServer(robotsim.Config{Now: clk.Now})
	defer srv.Close()
	const key = "wxSimKey-0123456789"
	require.NoError(t, srv.AddRobot(robotsim.Robot{Platform: robotsim.PlatformWeCom, Token: key, Limit: 8}))
	robot := delivery.Robot{Name: "wx", Platform: delivery.PlatformWeCom, Webhook: srv.WebhookURL(key)}
	d, err := delivery.New()
	require.NoError(t, err)
	ctx := context.Background()

	for i, m := range allKinds {
		env := simEnv(fmt.Sprintf("kind-%d", i), m)
		if i == 0 {
			env.At = &envelope.At{UserIDs: []string{"zhangsan"}}
		}
		res := d.Deliver(ctx, robot, env)
		require.Equal(t, delivery.Success, res.Outcome, "kind %d: %+v", i, res)
	}
	rec := srv.Received(key)
	require.Equal(t, []string{"text", "markdown", "news", "template_card", "template_card", "news"},
		[]string{rec[0].MsgType, rec[1].MsgType, rec[2].MsgType, rec[3].MsgType, rec[4].MsgType, rec[5].MsgType})
	require.Equal(t, []string{"zhangsan"}, rec[0].AtUserIDs)

	before := srv.Stats(key).Requests
	res := d.Deliver(ctx, robot, simEnv("long", envelope.Message{Text: &envelope.Text{Content: strings.Repeat("y", 2049)}}))
	require.Equal(t, delivery.Permanent, res.Outcome)
	require.ErrorIs(t, res.Err, delivery.ErrTooLong)
	require.Equal(t, before, srv.Stats(key).Requests, "refused without a request")

	var last delivery.Result
	for i := range 3 {
		last = d.Deliver(ctx, robot, simEnv(fmt.Sprintf("more-%d", i), allKinds[0]))
	}
	require.Equal(t, delivery.Throttled, last.Outcome, "the 9th of 8 per minute: %+v", last)
	require.Equal(t, delivery.WeComErrFrequency, last.ErrCode)

	unknown := robot
	unknown.Webhook = srv.URL + "/cgi-bin/webhook/send?key=notAKey12345"
	res = d.Deliver(ctx, unknown, simEnv("u", allKinds[0]))
	require.Equal(t, delivery.Permanent, res.Outcome)
	require.Equal(t, delivery.WeComErrInvalidURL, res.ErrCode)
	require.NotContains(t, fmt.Sprint(res), "notAKey12345")
}

// manualClock is the simulator's window clock, advanced by the test.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
