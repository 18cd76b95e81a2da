package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/limiter"
)

const (
	feishuWebhook = "https://open.feishu.cn/open-apis/bot/v2/hook/2c9a77b1-feishu"
	weComWebhook  = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-wecom"
)

func TestFeishuAndWeComDefaults(t *testing.T) {
	c, err := config.Parse([]byte(`robots:
  - name: lark
    platform: feishu
    webhook: "`+feishuWebhook+`"
    secret: SECf
    keywords: [alert]
  - name: wx
    platform: wecom
    webhook: "`+weComWebhook+`"
`), env(nil))
	require.NoError(t, err)
	lark, _ := c.Robot("lark")
	require.Equal(t, limiter.Limit{Max: 100, Window: time.Minute, Margin: time.Second,
		Also: []limiter.Window{{Max: 5, Window: time.Second}}}, c.Limit(lark))
	require.Equal(t, time.Minute, c.CoolOff(lark))
	wx, _ := c.Robot("wx")
	require.Equal(t, limiter.Limit{Max: 20, Window: time.Minute, Margin: 5 * time.Second}, c.Limit(wx))
	require.Equal(t, time.Minute, c.CoolOff(wx))
	p, _ := delivery.LookupPlatform(delivery.PlatformWeCom)
	require.Equal(t, p.Size, c.Size(wx))
	wantWx, err := config.RobotIdentity(config.WeCom, "https://QYAPI.weixin.qq.com/cgi-bin/webhook/send?debug=1&key=693a91f6-wecom")
	require.NoError(t, err)
	require.Equal(t, wantWx, wx.Identity, "the key names the robot, not the rest of the URL")
	wantLark, err := config.RobotIdentity(config.Feishu, feishuWebhook+"/")
	require.NoError(t, err)
	require.Equal(t, wantLark, lark.Identity)
	require.NotEqual(t, wx.Identity, lark.Identity)
}

func TestPlatformWindowsConfigurable(t *testing.T) {
	c, err := config.Parse([]byte(`platforms:
  feishu:
    limit: 50
    windows: [{limit: 2, window: 1s}, {limit: 20, window: 10s}]
    cool_off: 3m
robots:
  - name: lark
    platform: feishu
    webhook: "`+feishuWebhook+`"
  - name: slow
    platform: feishu
    webhook: "`+feishuWebhook+`x"
    limit: 8
    window: 10s
`), env(nil))
	require.NoError(t, err)
	lark, _ := c.Robot("lark")
	require.Equal(t, limiter.Limit{Max: 50, Window: time.Minute, Margin: time.Second,
		Also: []limiter.Window{{Max: 2, Window: time.Second}, {Max: 20, Window: 10 * time.Second}}}, c.Limit(lark))
	require.Equal(t, 3*time.Minute, c.CoolOff(lark))
	slow, _ := c.Robot("slow")
	require.Equal(t, limiter.Limit{Max: 8, Window: 10 * time.Second, Margin: time.Second,
		Also: []limiter.Window{{Max: 2, Window: time.Second}}}, c.Limit(slow),
		"the robot's own window replaces the platform's window of its length")
}

func TestPlatformRulesInvalid(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"wecom robot with a secret", "robots:\n  - name: w\n    platform: wecom\n    webhook: \"" + weComWebhook + "\"\n    secret: s\n",
			`robots[0] "w": secret: WeCom robots are not signed`},
		{"wecom robot with keywords", "robots:\n  - name: w\n    platform: wecom\n    webhook: \"" + weComWebhook + "\"\n    keywords: [a]\n",
			`robots[0] "w": keywords: WeCom robots have no keyword security`},
		{"window longer than the platform's", "platforms:\n  feishu:\n    windows: [{limit: 5, window: 2m}]\nrobots:\n" + robotYAML("a"),
			"platforms.feishu.windows[0]: window 2m0s must be shorter than window 1m0s"},
		{"window without a limit", "platforms:\n  feishu:\n    windows: [{window: 1s}]\nrobots:\n" + robotYAML("a"),
			"platforms.feishu.windows[0]: limit and window must be positive"},
		{"robot over the per-second window", "robots:\n  - name: f\n    platform: feishu\n    webhook: \"" + feishuWebhook + "\"\n    limit: 6\n    window: 1s\n",
			`robots[0] "f": limit: 6 per 1s exceeds the feishu limit of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml), env(nil))
			require.ErrorIs(t, err, config.ErrInvalid)
			require.Contains(t, err.Error(), tt.want)
			require.NotContains(t, err.Error(), "693a91f6", "the WeCom key is never echoed")
		})
	}
}
