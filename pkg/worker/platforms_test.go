package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/robotsim"
)

// TestFeishuWeComThrottleCoolOff: a Feishu or WeCom robot whose platform
// allows fewer than the worker believes answers 11232 (Feishu's minute),
// 9499 "too many request" (Feishu's second, HTTP 400) or 45009 (WeCom):
// each is a throttle answered by a cool-off, no request arrives during
// the platform's ban, and every message is delivered once, in order,
// without spending an attempt.
func TestFeishuWeComThrottleCoolOff(t *testing.T) {
	const ban = time.Second
	tests := []struct {
		name     string
		platform string
		lim      limiter.Limit // what the worker believes
		sim      robotsim.Robot
		code     int
	}{
		{"feishu minute", robotsim.PlatformFeishu, limiter.Limit{Max: 10, Window: time.Second},
			robotsim.Robot{Limit: 3, BurstLimit: 100}, robotsim.FeishuErrFrequency},
		{"feishu second", robotsim.PlatformFeishu, limiter.Limit{Max: 10, Window: time.Second},
			robotsim.Robot{Limit: 100, BurstLimit: 2}, robotsim.FeishuErrBadRequest},
		{"wecom", robotsim.PlatformWeCom, limiter.Limit{Max: 10, Window: time.Second},
			robotsim.Robot{Limit: 3}, robotsim.WeComErrFrequency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, "", robotsim.Config{Window: time.Second, BurstWindow: 200 * time.Millisecond, FeishuBan: ban, WeComBan: ban})
			r.addRobot(tt.platform, "bot", "", "", nil, tt.lim)
			tt.sim.Platform, tt.sim.Token = tt.platform, "bot"
			require.NoError(t, r.sim.AddRobot(tt.sim))
			r.robots[0].CoolOff = ban + 100*time.Millisecond
			envs := r.publishN("bot", "msg", 8)
			r.startWorker(nil)

			p := r.waitExactly("bot", contents(envs)...)
			st := r.sim.Stats("bot")
			require.GreaterOrEqual(t, st.Breaches, 1, "the platform throttled the robot")
			require.Zero(t, st.DuringBan, "no request reached the robot during its cool-off")
			require.Len(t, p.Refused, st.Breaches)
			for _, rq := range p.Refused {
				require.Equal(t, tt.code, rq.ErrCode)
			}
			require.Equal(t, st.Breaches, r.countEvents("throttled"))
			require.Empty(t, r.deadLetters())
			for _, ev := range r.waitDelivered(envs, 10*time.Second) {
				require.Equal(t, 1, ev.Attempts, "a throttle is not an attempt")
			}
		})
	}
}

// TestFeishuWeComRefusedBeforeSending: a Feishu message without the
// robot's keyword and a WeCom text over 2,048 bytes are dead-lettered
// without a request; the messages around them are delivered.
func TestFeishuWeComRefusedBeforeSending(t *testing.T) {
	r := newRig(t, "", robotsim.Config{Window: time.Second})
	lim := limiter.Limit{Max: 20, Window: time.Second}
	r.addRobot(robotsim.PlatformFeishu, "lark", "SEClark", "SEClark", []string{"alert"}, lim)
	r.robots[0].Limit.Also = []limiter.Window{{Max: 5, Window: 50 * time.Millisecond}}
	r.addRobot(robotsim.PlatformWeCom, "wx", "", "", nil, lim)
	good := []*envelope.Envelope{
		envelope.New("lark", text("alert: db-3 disk full")),
		envelope.New("wx", text("db-3 disk full")),
	}
	bad := []*envelope.Envelope{
		envelope.New("lark", text("lunch is served")),
		envelope.New("wx", text(strings.Repeat("x", 2049))),
	}
	for _, e := range []*envelope.Envelope{good[0], bad[0], bad[1], good[1]} {
		r.publish(e)
	}
	r.startWorker(nil)
	r.waitExactly("lark", "alert: db-3 disk full")
	r.waitExactly("wx", "db-3 disk full")
	dead := r.waitDeadExactly(2, 10*time.Second)
	reasons := map[string]deadletter.Reason{}
	for _, d := range dead {
		reasons[d.Record.Robot] = d.Record.Reason
	}
	require.Equal(t, deadletter.ReasonMissingKeyword, reasons["lark"])
	require.Equal(t, deadletter.ReasonPermanent, reasons["wx"])
	require.Equal(t, 1, r.sim.Stats("lark").Requests, "the message without the keyword was not sent")
	require.Equal(t, 1, r.sim.Stats("wx").Requests, "the over-long text was not sent")
}
