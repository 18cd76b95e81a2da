package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/testenv"
)

// An operator's laptop has the config file, not the robots' secrets or
// webhooks: status --config needs only names and limits.
func TestStatusConfigWithoutSecrets(t *testing.T) {
	t.Setenv(cli.EnvRedisAddr, "")
	f := newFixture(t)
	require.NoError(t, f.run(t, "", "send", "--robot", "ops", "--text", "x").err)
	path := testenv.WriteFile(t, "robots.yaml", `prefix: `+f.topo.Prefix+`
robots:
  - name: ops
    platform: dingtalk
    webhook: "${STATUS_TEST_UNSET_WEBHOOK}"
    secret_env: STATUS_TEST_UNSET_SECRET
  - name: dev
    platform: popo
    webhook: "https://open.popo.netease.com/open-apis/robots/v1/hook/h1"
    secret_file: /nonexistent/dev-secret
`)
	r := f.run(t, "", "status", "--config", path)
	require.NoError(t, r.err, r.stderr)
	st := parseStatus(t, r.stdout)
	require.Equal(t, "1", st.rows["ops"]["BACKLOG"])
	require.Contains(t, st.rows, "dev", "robots of the file are listed")
}
