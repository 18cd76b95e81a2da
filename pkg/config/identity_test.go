package config_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/limiter"
)

// Webhooks that differ only in what does not name the platform robot (host
// case, other query parameters, trailing slashes, escaping) have one
// identity; another credential or platform gives another.
func TestRobotIdentity(t *testing.T) {
	const popoHook = "https://open.popo.netease.com/open-apis/robots/v1/hook/" + hookID
	same := []struct {
		name, platform, a, b string
	}{
		{name: "dingtalk host case and parameters", platform: config.DingTalk,
			a: dingWebhook, b: "https://OAPI.DingTalk.com/robot/send?foo=bar&access_token=" + token + "&timestamp=1"},
		{name: "dingtalk escaped token", platform: config.DingTalk,
			a: dingWebhook, b: "https://oapi.dingtalk.com/robot/send/?access_token=" + strings.ReplaceAll(token, "t", "%74")},
		{name: "popo trailing slashes and query", platform: config.POPO,
			a: popoHook, b: "https://Open.POPO.netease.com/open-apis/robots/v1/hook/" + hookID + "//?x=1"},
		{name: "popo escaped id", platform: config.POPO,
			a: popoHook, b: "https://open.popo.netease.com/open-apis/robots/v1/hook/" + strings.ReplaceAll(hookID, "k", "%6B")},
	}
	for _, tt := range same {
		t.Run(tt.name, func(t *testing.T) {
			a, err := config.RobotIdentity(tt.platform, tt.a)
			require.NoError(t, err)
			b, err := config.RobotIdentity(tt.platform, tt.b)
			require.NoError(t, err)
			require.Equal(t, a, b)
			require.Regexp(t, regexp.MustCompile(`^`+tt.platform+`-[0-9a-f]{24}$`), a)
			require.NotContains(t, a, token)
			require.NotContains(t, a, hookID)
			// A valid limiter robot name.
			_, err = limiter.NewMemory(nil).Reserve(t.Context(), a, limiter.Limit{Max: 1, Window: 1})
			require.NoError(t, err)
		})
	}

	t.Run("other credential or platform", func(t *testing.T) {
		ids := map[string]bool{}
		for _, c := range []struct{ platform, webhook string }{
			{config.DingTalk, dingWebhook},
			{config.DingTalk, dingWebhook + "x"},
			{config.POPO, popoHook},
			{config.POPO, popoHook + "x"},
			{config.POPO, "https://open.popo.netease.com/open-apis/robots/v1/hook/" + token},
		} {
			id, err := config.RobotIdentity(c.platform, c.webhook)
			require.NoError(t, err)
			require.False(t, ids[id], "%s %s: identity not unique", c.platform, c.webhook)
			ids[id] = true
		}
	})

	bad := []struct {
		name, platform, webhook, want string
	}{
		{name: "dingtalk without token", platform: config.DingTalk, webhook: "https://oapi.dingtalk.com/robot/send?token=" + token, want: "no access_token"},
		{name: "popo without hook", platform: config.POPO, webhook: "https://open.popo.netease.com/open-apis/robots/v1/" + hookID, want: "no hook id"},
		{name: "popo hook without id", platform: config.POPO, webhook: "https://open.popo.netease.com/open-apis/robots/v1/hook/", want: "no hook id"},
		{name: "feishu without token", platform: config.Feishu, webhook: "https://open.feishu.cn/open-apis/bot/v2/", want: "no hook token in the path"},
		{name: "wecom without key", platform: config.WeCom, webhook: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?k=1", want: "no key query parameter"},
		{name: "unknown platform", platform: "slack", webhook: dingWebhook, want: "not supported"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.RobotIdentity(tt.platform, tt.webhook)
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), token)
			require.NotContains(t, err.Error(), hookID)
		})
	}
}

// Two robots of the file posting to one platform robot are refused: the
// error names both and the webhook's redacted form, never the credential.
func TestParseSamePlatformRobotTwice(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{name: "dingtalk", yaml: "robots:\n" + robotYAML("ops") + robotYAML("other") +
			"  - name: renamed\n    platform: dingtalk\n    webhook: \"https://OAPI.dingtalk.com/robot/send/?access_token=" + token + "&x=1\"\n",
			want: []string{
				`robots[1] "other": webhook: https://oapi.dingtalk.com/robot/send is the same dingtalk robot as robots[0] "ops"`,
				`robots[2] "renamed": webhook: https://OAPI.dingtalk.com/robot/send/ is the same dingtalk robot as robots[0] "ops"`,
			}},
		{name: "popo", yaml: "robots:\n" +
			"  - {name: a, platform: popo, webhook: 'https://open.popo.netease.com/open-apis/robots/v1/hook/" + hookID + "'}\n" +
			"  - {name: b, platform: popo, webhook: 'https://open.popo.netease.com/open-apis/robots/v1/hook/" + hookID + "/'}\n",
			want: []string{`robots[1] "b": webhook: https://open.popo.netease.com/open-apis/robots/v1/hook/REDACTED/ is the same popo robot as robots[0] "a"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml), noEnv)
			require.ErrorIs(t, err, config.ErrInvalid)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			require.NotContains(t, err.Error(), token)
			require.NotContains(t, err.Error(), hookID)
		})
	}

	t.Run("same credential on two platforms is two robots", func(t *testing.T) {
		c, err := config.Parse([]byte("robots:\n"+
			"  - {name: d, platform: dingtalk, webhook: 'https://oapi.dingtalk.com/robot/send?access_token=same1d'}\n"+
			"  - {name: p, platform: popo, webhook: 'https://open.popo.netease.com/open-apis/robots/v1/hook/same1d'}\n"), noEnv)
		require.NoError(t, err)
		require.NotEqual(t, c.Robots[0].Identity, c.Robots[1].Identity)
	})
}

// Validation gives every robot its identity, which is its limiter key: a
// robot renamed in the file keeps it.
func TestParseIdentityIsLimitKey(t *testing.T) {
	parse := func(name string) config.Robot {
		c, err := config.Parse([]byte("robots:\n"+robotYAML(name)), noEnv)
		require.NoError(t, err)
		return c.Robots[0]
	}
	before, after := parse("ops"), parse("ops-renamed")
	want, err := config.RobotIdentity(config.DingTalk, dingWebhook)
	require.NoError(t, err)
	require.Equal(t, want, before.Identity)
	require.Equal(t, before.LimitKey(), after.LimitKey())
	require.Equal(t, "plain", config.Robot{Name: "plain"}.LimitKey(), "no identity: the name")
}
