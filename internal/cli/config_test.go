package cli_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/testenv"
)

func TestLoadWithoutSecrets(t *testing.T) {
	path := testenv.WriteFile(t, "robots.yaml", `prefix: staging
robots:
  - name: ops
    platform: dingtalk
    webhook: "${OPS_WEBHOOK}"
    secret_env: OPS_SECRET
    limit: 10
  - name: deploys
    platform: popo
    webhook: "https://open.popo.netease.com/open-apis/robots/v1/hook/h1"
    secret_file: /nonexistent/secret
  - name: ci
    platform: dingtalk
    webhook: "${CI_WEBHOOK}"
    secret: "${CI_SECRET}"
`)
	cfg, err := cli.LoadWithoutSecrets(path, testenv.LookupMap(nil))
	require.NoError(t, err)
	require.Equal(t, "staging", cfg.Prefix)
	require.Equal(t, []string{"ops", "deploys", "ci"}, cfg.Names())
	ops, _ := cfg.Robot("ops")
	require.Equal(t, 10, cfg.Limit(ops).Max)
	for _, rb := range cfg.Robots {
		require.Empty(t, rb.Secret, rb.Name)
	}

	bad := testenv.WriteFile(t, "bad.yaml", "robots:\n  - name: a\n    platform: slack\n    webhook: https://x.example\n")
	_, err = cli.LoadWithoutSecrets(bad, testenv.LookupMap(nil))
	require.ErrorContains(t, err, "platform: not supported")
}

// Placeholders stand in for every platform's webhook, Feishu's and WeCom's
// too, each with its own identity.
func TestLoadWithoutSecretsEveryPlatform(t *testing.T) {
	path := testenv.WriteFile(t, "robots.yaml", `robots:
  - name: lark
    platform: feishu
    webhook: "${LARK_WEBHOOK}"
  - name: wx
    platform: wecom
    webhook: "${WX_WEBHOOK}"
`)
	cfg, err := cli.LoadWithoutSecrets(path, testenv.LookupMap(nil))
	require.NoError(t, err)
	lark, _ := cfg.Robot("lark")
	wx, _ := cfg.Robot("wx")
	require.True(t, cli.IsPlaceholder(lark.Webhook))
	require.NotEmpty(t, lark.Identity)
	require.NotEqual(t, lark.Identity, wx.Identity)
	require.Equal(t, 2048, cfg.Size(wx).Text)
}
