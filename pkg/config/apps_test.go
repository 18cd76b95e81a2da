package config_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/limiter"
)

const appSecretValue = "AppS3cretValue-never-echoed"

func TestAppsOnly(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(file, []byte("  from-file\n"), 0o600))
	yaml := "apps:\n" +
		"  - {name: helpdesk, platform: dingtalk, app_secret_env: HELPDESK_APP_SECRET}\n" +
		"  - {name: deploy, platform: dingtalk, app_secret: inline}\n" +
		"  - {name: ops, platform: dingtalk, app_secret_file: " + file + ", limit: 10}\n"
	c, err := config.Parse([]byte(yaml), env(map[string]string{"HELPDESK_APP_SECRET": appSecretValue}))
	require.NoError(t, err)
	require.Empty(t, c.Robots)
	require.Equal(t, []string{"helpdesk", "deploy", "ops"}, c.AppNames())
	app, ok := c.App("helpdesk")
	require.True(t, ok)
	require.Equal(t, appSecretValue, app.AppSecret)
	ops, _ := c.App("ops")
	require.Equal(t, "from-file", ops.AppSecret)
	require.Equal(t, limiter.Limit{Max: 10, Window: time.Minute, Margin: 5 * time.Second}, c.AppLimit(ops))
	require.Equal(t, limiter.Limit{Max: 20, Window: time.Minute, Margin: 5 * time.Second}, c.AppLimit(app))
	_, ok = c.App("nope")
	require.False(t, ok)
}

func TestAppsInvalid(t *testing.T) {
	vars := map[string]string{"S": appSecretValue}
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{name: "nothing", yaml: "prefix: x\n", want: "robots: at least one robot (or app) is required"},
		{name: "no secret", yaml: "apps:\n  - {name: a, platform: dingtalk}\n",
			want: `apps[0] "a": app_secret: required (set app_secret, app_secret_env or app_secret_file)`},
		{name: "two secrets", yaml: "apps:\n  - {name: a, platform: dingtalk, app_secret: x, app_secret_env: S}\n",
			want: `apps[0] "a": app_secret: set only one of app_secret, app_secret_env, app_secret_file`},
		{name: "env not set", yaml: "apps:\n  - {name: a, platform: dingtalk, app_secret_env: NOPE}\n",
			want: `apps[0] "a": app_secret_env: environment variable NOPE is not set`},
		{name: "file missing", yaml: "apps:\n  - {name: a, platform: dingtalk, app_secret_file: /nonexistent/s}\n",
			want: `apps[0] "a": app_secret_file: cannot read /nonexistent/s: no such file or directory`},
		{name: "popo", yaml: "apps:\n  - {name: a, platform: popo, app_secret: x}\n",
			want: `apps[0] "a": platform: not supported (only dingtalk has enterprise-robot callbacks)`},
		{name: "secret as platform", yaml: "apps:\n  - {name: a, platform: \"${S}\", app_secret: x}\n",
			want: `apps[0] "a": platform: not supported`},
		{name: "secret as name", yaml: "apps:\n  - {name: \"${S}x!\", platform: dingtalk, app_secret: x}\n",
			want: `apps[0]: name: must be 1-64 characters of [A-Za-z0-9_-]`},
		{name: "no name", yaml: "apps:\n  - {platform: dingtalk, app_secret: x}\n", want: "apps[0]: name: required"},
		{name: "duplicate", yaml: "apps:\n  - {name: a, platform: dingtalk, app_secret: x}\n  - {name: a, platform: dingtalk, app_secret: y}\n",
			want: `apps[1] "a": name: duplicate of apps[0]`},
		{name: "robot's name", yaml: "robots:\n" + robotYAML("a") + "apps:\n  - {name: a, platform: dingtalk, app_secret: x}\n",
			want: `apps[0] "a": name: also the name of robots[0]`},
		{name: "over the platform", yaml: "apps:\n  - {name: a, platform: dingtalk, app_secret: x, limit: 21}\n",
			want: `apps[0] "a": limit: 21 per 1m0s exceeds the dingtalk limit of 20 per 1m0s`},
		{name: "negative", yaml: "apps:\n  - {name: a, platform: dingtalk, app_secret: x, limit: -1}\n",
			want: `apps[0] "a": limit and window must not be negative`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml), env(vars))
			require.ErrorIs(t, err, config.ErrInvalid)
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), appSecretValue)
		})
	}
}
