package simconfig_test

import (
	"fmt"
	"github.com/stretchr/testify/require"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/robotsim/simconfig"
)

// One worker configuration file drives the simulator: every robot with its
// token, secret (inline or from the environment) and keywords, at its
// platform's limit and window in the file (defaults where not set), not
// the lower rate a robot is given.
func TestLoadConfig(t *testing.T) {
	base := "http://127.0.0.1:1"
	file := writeConfig(t, fmt.Sprintf(`
platforms:
  dingtalk: {limit: 7, window: 2s}
  popo: {limit: 9, window: 3s}
robots:
  - {name: a, platform: dingtalk, webhook: %q, secret_env: A_SECRET, keywords: [alert], limit: 3}
  - {name: b, platform: popo, webhook: %q, secret: popo-secret}
  - {name: c, platform: feishu, webhook: %q}
  - {name: d, platform: wecom, webhook: %q}
`, robotsim.WebhookURL(base, robotsim.PlatformDingTalk, "dt"), robotsim.WebhookURL(base, robotsim.PlatformPOPO, "po"),
		robotsim.WebhookURL(base, robotsim.PlatformFeishu, "fs"), robotsim.WebhookURL(base, robotsim.PlatformWeCom, "wc")))
	env := map[string]string{"A_SECRET": "SECa"}
	robots, err := simconfig.LoadConfig(file, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	require.Equal(t, []robotsim.Robot{
		{Platform: robotsim.PlatformDingTalk, Token: "dt", Secret: "SECa", Keywords: []string{"alert"}, Limit: 7, Window: 2 * time.Second},
		{Platform: robotsim.PlatformPOPO, Token: "po", Secret: "popo-secret", Limit: 9, Window: 3 * time.Second},
		{Platform: robotsim.PlatformFeishu, Token: "fs", Limit: 100, Window: time.Minute, BurstLimit: 5},
		{Platform: robotsim.PlatformWeCom, Token: "wc", Limit: 20, Window: time.Minute},
	}, robots)

	_, err = simconfig.LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"), nil)
	require.ErrorIs(t, err, os.ErrNotExist)
	bad := writeConfig(t, `robots: [{name: a, platform: dingtalk, webhook: "https://x/robot/send?other=SECRETVALUE"}]`)
	_, err = simconfig.LoadConfig(bad, nil)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "SECRETVALUE")
}

// A fleet of 20,000 robots from one worker configuration loads and serves:
// the simulator of the fleet-scale benchmark.
func TestLoadConfig20000Robots(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 robots")
	}
	const n = 20000
	var b strings.Builder
	b.WriteString("robots:\n")
	for i := range n {
		platform := robotsim.PlatformDingTalk
		if i%2 == 1 {
			platform = robotsim.PlatformPOPO
		}
		fmt.Fprintf(&b, "  - {name: r%05d, platform: %s, webhook: %q, secret: s%05d}\n", i, platform,
			robotsim.WebhookURL("http://127.0.0.1:1", platform, fmt.Sprintf("t%05d", i)), i)
	}
	robots, err := simconfig.LoadConfig(writeConfig(t, b.String()), nil)
	require.NoError(t, err)
	require.Len(t, robots, n)
	require.Equal(t, robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: "t00000", Secret: "s00000", Limit: 20, Window: time.Minute}, robots[0])
	require.Equal(t, "t19999", robots[n-1].Token)
	require.Equal(t, robotsim.PlatformPOPO, robots[n-1].Platform)
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}
