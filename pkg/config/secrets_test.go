package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/stream"
)

// A value from the environment is never echoed by an error, wherever it
// was put by mistake.
func TestErrorsNeverEchoEnvironmentValues(t *testing.T) {
	const secretValue = "SECs3cr3tFromTheEnv"
	vars := map[string]string{"S": secretValue, "W": dingWebhook}
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{name: "secret as a duration", yaml: "platforms:\n  dingtalk:\n    window: ${S}\nrobots:\n" + robotYAML("a"),
			want: "line 3: not a duration"},
		{name: "webhook as a platform", yaml: "robots:\n  - name: a\n    platform: ${W}\n    webhook: \"${W}\"\n",
			want: `robots[0] "a": platform: not supported`},
		{name: "secret as a number", yaml: "concurrency: ${S}\nrobots:\n" + robotYAML("a"),
			want: "cannot unmarshal !!str a value into int"},
		{name: "secret as an outcome", yaml: "platforms:\n  popo:\n    errcodes:\n      - {codes: [1], outcome: ${S}}\nrobots:\n" + robotYAML("a"),
			want: "outcome: must be retryable, throttled, wait or permanent"},
		{name: "webhook as a name", yaml: "robots:\n  - name: \"${W}\"\n    platform: dingtalk\n    webhook: \"${W}\"\n",
			want: "robots[0]: name: must be 1-64 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml), env(vars))
			require.ErrorIs(t, err, config.ErrInvalid)
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), secretValue)
			require.NotContains(t, err.Error(), token)
		})
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name    string
		webhook string
		want    []string
	}{
		{name: "https", webhook: dingWebhook},
		{name: "http to loopback (a simulator)", webhook: "http://127.0.0.1:8080/robot/send?access_token=" + token},
		{name: "http to localhost", webhook: "http://localhost:8080/robot/send?access_token=" + token},
		{name: "http to IPv6 loopback", webhook: "http://[::1]:8080/robot/send?access_token=" + token},
		{name: "http elsewhere", webhook: "http://oapi.dingtalk.com/robot/send?access_token=" + token,
			want: []string{`robots[0] "a": webhook: http:// to a host other than the loopback sends the robot's token in clear text; use https`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte("robots:\n  - name: a\n    platform: dingtalk\n    webhook: \""+tt.webhook+"\"\n"), env(nil))
			require.NoError(t, err)
			require.Equal(t, tt.want, c.Warnings())
			require.NotContains(t, strings.Join(c.Warnings(), ""), token)
		})
	}
}

func TestStreamLimits(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want stream.Limits
	}{
		{name: "absent: defaults (zero)", want: stream.Limits{}},
		{name: "set", yaml: "streams:\n  out:\n    max_bytes: 1048576\n    max_age: 24h\n    max_messages_per_robot: 500\n  dead_letters:\n    max_bytes: 2097152\n    max_age: 48h\n",
			want: stream.Limits{OutMaxBytes: 1 << 20, OutMaxAge: 24 * time.Hour, OutMaxMsgsPerRobot: 500, DLQMaxBytes: 2 << 20, DLQMaxAge: 48 * time.Hour}},
		{name: "no limit", yaml: "streams:\n  dead_letters:\n    max_age: -1s\n", want: stream.Limits{DLQMaxAge: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.yaml+"robots:\n"+robotYAML("a")), env(nil))
			require.NoError(t, err)
			require.Equal(t, tt.want, c.StreamLimits())
		})
	}
}
