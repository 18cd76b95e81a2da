package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/testenv"
)

const platformsYAML = `robots:
  - name: ding
    platform: dingtalk
    webhook: "https://oapi.dingtalk.com/robot/send?access_token=${DING_TOKEN}"
  - name: wx
    platform: wecom
    webhook: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=${WX_KEY}"
`

// TestSendPlatformSizeRules: with --config, a 3,000-byte text that fits
// the DingTalk robot is refused for the WeCom robot (2,048 bytes) at the
// producer, nothing published, or split for it with --split.
func TestSendPlatformSizeRules(t *testing.T) {
	cfg := testenv.WriteFile(t, "robots.yaml", platformsYAML)
	content := numberedLines(30) // 3,000 bytes

	f := newFixture(t)
	r := f.run(t, "", "send", "--config", cfg, "--robot", "ding,wx", "--text", content)
	require.Error(t, r.err)
	require.Equal(t, 1, cli.ExitCode(r.err))
	require.ErrorContains(t, r.err, "nothing published")
	require.ErrorContains(t, r.err, "too large for wecom")
	require.ErrorContains(t, r.err, "add --split")
	require.Empty(t, f.outbound(t))

	r = f.run(t, "", "send", "--config", cfg, "--robot", "ding", "--text", content)
	require.NoError(t, r.err, "fits DingTalk")

	r = f.run(t, "", "send", "--config", cfg, "--robot", "wx", "--text", content, "--split")
	require.NoError(t, r.err)
	out := f.outbound(t)
	require.Len(t, out, 3, "one whole message for ding, two parts for wx")
	for _, m := range out[1:] {
		env := m.env
		require.Equal(t, "wx", env.Robot)
		require.LessOrEqual(t, len(env.Message.Text.Content), 2048)
	}
}
