package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/limiter"
)

// Credentials used in the tests; no error may ever contain them.
const (
	token  = "tok3n5ecretvalue"
	secret = "SECs3cr3tvalue"
	hookID = "hook1d5ecret"
)

var dingWebhook = "https://oapi.dingtalk.com/robot/send?access_token=" + token

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func noEnv(string) (string, bool) { return "", false }

// robotYAML is one valid DingTalk robot; extra lines are appended to it.
func robotYAML(name string, extra ...string) string {
	s := "  - name: " + name + "\n    platform: dingtalk\n    webhook: \"" + dingWebhook + "\"\n"
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s
}

func TestParseInvalid(t *testing.T) {
	dir := t.TempDir()
	emptyFile := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(emptyFile, []byte(" \n"), 0o600))
	missingFile := filepath.Join(dir, "nope")
	hugeFile := filepath.Join(dir, "huge")
	require.NoError(t, os.WriteFile(hugeFile, make([]byte, config.MaxSecretFile+1), 0o600))

	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // every one must be in the error
	}{
		{name: "no robots", yaml: "prefix: x\n", want: []string{"robots: at least one robot (or app) is required"}},
		{name: "missing name", yaml: "robots:\n  - platform: dingtalk\n    webhook: \"" + dingWebhook + "\"\n",
			want: []string{"robots[0]: name: required"}},
		{name: "bad name", yaml: "robots:\n" + robotYAML("has space"),
			want: []string{`robots[0]: name: must be 1-64 characters`}},
		{name: "name too long", yaml: "robots:\n" + robotYAML(strings.Repeat("a", 65)),
			want: []string{"name: must be 1-64 characters"}},
		{name: "duplicate", yaml: "robots:\n" + robotYAML("ops") + robotYAML("ops"),
			want: []string{`robots[1] "ops": name: duplicate of robots[0]`}},
		{name: "bad platform", yaml: "robots:\n  - name: a\n    platform: slack\n    webhook: \"" + dingWebhook + "\"\n",
			want: []string{`robots[0] "a": platform: not supported (want dingtalk, popo, feishu, wecom)`}},
		{name: "missing platform", yaml: "robots:\n  - name: a\n    webhook: \"" + dingWebhook + "\"\n",
			want: []string{`platform: required`}},
		{name: "missing webhook", yaml: "robots:\n  - name: a\n    platform: dingtalk\n",
			want: []string{`robots[0] "a": webhook: required`}},
		{name: "webhook bad scheme", yaml: "robots:\n  - name: a\n    platform: dingtalk\n    webhook: \"ftp://oapi.dingtalk.com/robot/send?access_token=" + token + "\"\n",
			want: []string{"webhook: scheme must be https"}},
		{name: "webhook no host", yaml: "robots:\n  - name: a\n    platform: popo\n    webhook: \"https:///open-apis/robots/v1/hook/" + hookID + "\"\n",
			want: []string{"webhook: no host"}},
		{name: "webhook unparsable", yaml: "robots:\n  - name: a\n    platform: popo\n    webhook: \"https://[::1/hook/" + hookID + "\"\n",
			want: []string{"webhook: not a valid URL"}},
		{name: "two secret sources", yaml: "robots:\n" + robotYAML("a", "secret: "+secret, "secret_env: S"), env: map[string]string{"S": secret},
			want: []string{"secret: set only one of secret, secret_env, secret_file"}},
		{name: "secret_env unset", yaml: "robots:\n" + robotYAML("a", "secret_env: OPS_SECRET"),
			want: []string{"secret_env: environment variable OPS_SECRET is not set"}},
		{name: "secret_env empty", yaml: "robots:\n" + robotYAML("a", "secret_env: OPS_SECRET"), env: map[string]string{"OPS_SECRET": ""},
			want: []string{"secret_env: environment variable OPS_SECRET is not set"}},
		{name: "secret_file missing", yaml: "robots:\n" + robotYAML("a", "secret_file: "+missingFile),
			want: []string{"secret_file: cannot read " + missingFile}},
		{name: "secret_file empty", yaml: "robots:\n" + robotYAML("a", "secret_file: "+emptyFile),
			want: []string{"secret_file: " + emptyFile + " is empty"}},
		{name: "secret_file too large", yaml: "robots:\n" + robotYAML("a", "secret_file: "+hugeFile),
			want: []string{"secret_file: " + hugeFile + " is larger than 65536 bytes: not a secret"}},
		{name: "too many keywords", yaml: "robots:\n" + robotYAML("a", "keywords: [a, b, c, d, e, f, g, h, i, j, k]"),
			want: []string{"keywords: at most 10 (the platforms' limit), got 11"}},
		{name: "empty keyword", yaml: "robots:\n" + robotYAML("a", `keywords: [alert, " "]`),
			want: []string{"keywords[1]: empty keyword"}},
		{name: "robot limit above platform", yaml: "robots:\n" + robotYAML("a", "limit: 21"),
			want: []string{`robots[0] "a": limit: 21 per 1m0s exceeds the dingtalk limit of 20 per 1m0s`}},
		{name: "robot limit above lowered platform", yaml: "platforms:\n  popo:\n    limit: 30\nrobots:\n  - name: p\n    platform: popo\n    webhook: https://open.popo.netease.com/open-apis/robots/v1/hook/" + hookID + "\n    limit: 31\n",
			want: []string{"exceeds the popo limit of 30 per 1m0s"}},
		{name: "robot window shorter than platform's", yaml: "robots:\n" + robotYAML("a", "limit: 15", "window: 30s"),
			want: []string{"limit: 15 per 30s exceeds the dingtalk limit of 20 per 1m0s"}},
		{name: "robot window alone shorter", yaml: "robots:\n" + robotYAML("a", "window: 50s"),
			want: []string{"limit: 20 per 50s exceeds the dingtalk limit"}},
		{name: "negative robot limit", yaml: "robots:\n" + robotYAML("a", "limit: -1"),
			want: []string{`robots[0] "a": limit and window must not be negative`}},
		{name: "negative robot window", yaml: "robots:\n" + robotYAML("a", "window: -1s"),
			want: []string{"limit and window must not be negative"}},
		{name: "negative platform values", yaml: "platforms:\n  dingtalk:\n    margin: -1s\nrobots:\n" + robotYAML("a"),
			want: []string{"platforms.dingtalk: limit, window, margin and cool_off must not be negative"}},
		{name: "negative platform limit", yaml: "platforms:\n  popo:\n    limit: -5\nrobots:\n" + robotYAML("a"),
			want: []string{"platforms.popo: limit, window, margin and cool_off must not be negative"}},
		{name: "unknown platform key", yaml: "platforms:\n  slack:\n    limit: 5\nrobots:\n" + robotYAML("a"),
			want: []string{"platforms.slack: unknown platform"}},
		{name: "negative concurrency", yaml: "concurrency: -2\nrobots:\n" + robotYAML("a"),
			want: []string{"concurrency: must be positive, got -2"}},
		{name: "negative max throttles", yaml: "retry:\n  max_throttles: -1\nrobots:\n" + robotYAML("a"),
			want: []string{"retry.max_throttles: must be at least 1, got -1"}},
		{name: "unknown on_unknown_outcome", yaml: "robots:\n" + robotYAML("a", "on_unknown_outcome: ignore"),
			want: []string{`robots[0] "a": on_unknown_outcome: must be repost or dead_letter`}},
		{name: "negative max attempts", yaml: "retry:\n  max_attempts: -1\nrobots:\n" + robotYAML("a"),
			want: []string{"retry.max_attempts: must be at least 1, got -1"}},
		{name: "multiplier below one", yaml: "retry:\n  multiplier: 0.5\nrobots:\n" + robotYAML("a"),
			want: []string{"retry.multiplier: must be at least 1, got 0.5"}},
		{name: "max interval below initial", yaml: "retry:\n  initial_interval: 10s\n  max_interval: 1s\nrobots:\n" + robotYAML("a"),
			want: []string{"retry: need 0 < initial_interval <= max_interval"}},
		{name: "negative max elapsed", yaml: "retry:\n  max_elapsed: -1h\nrobots:\n" + robotYAML("a"),
			want: []string{"retry: need 0 < initial_interval <= max_interval and max_elapsed > 0"}},
		{name: "bad prefix", yaml: "prefix: \"bot.relay\"\nrobots:\n" + robotYAML("a"),
			want: []string{"prefix: must be 1-32 characters"}},
		{name: "unknown key", yaml: "robots:\n" + robotYAML("a", "webhok: x"),
			want: []string{"yaml:", "field webhok not found"}},
		{name: "unknown top-level key", yaml: "robot:\n" + robotYAML("a"),
			want: []string{"field robot not found"}},
		{name: "bad duration", yaml: "platforms:\n  dingtalk:\n    cool_off: ten minutes\nrobots:\n" + robotYAML("a"),
			want: []string{`line 3: not a duration`}},
		{name: "not yaml", yaml: "robots: [\n", want: []string{"yaml:"}},
		{name: "unset variables", yaml: "robots:\n  - name: a\n    platform: dingtalk\n    webhook: \"${OPS_WEBHOOK}\"\n    secret: \"${OPS_SECRET}\"\n    keywords: [\"${OPS_SECRET}\"]\n",
			want: []string{"environment variables not set: OPS_WEBHOOK, OPS_SECRET"}},
		{name: "every problem reported", yaml: "concurrency: -1\nrobots:\n" + robotYAML("a", "limit: 99") + robotYAML("a", "secret_env: NOPE"),
			want: []string{"concurrency: must be positive", `robots[0] "a": limit: 99`, `robots[1] "a": name: duplicate`, "NOPE is not set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.yaml), env(tt.env))
			require.Error(t, err)
			require.Nil(t, c)
			require.ErrorIs(t, err, config.ErrInvalid)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			for _, s := range []string{token, secret, hookID} {
				require.NotContains(t, err.Error(), s, "the error leaks a credential")
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := config.Parse([]byte(`
robots:
  - name: ding
    platform: dingtalk
    webhook: "`+dingWebhook+`"
  - name: popo
    platform: popo
    webhook: https://open.popo.netease.com/open-apis/robots/v1/hook/`+hookID+`
`), noEnv)
	require.NoError(t, err)
	require.Equal(t, "botrelay", c.Prefix)
	require.Equal(t, 32, c.Concurrency)
	require.Equal(t, config.Retry{
		MaxAttempts:     8,
		MaxThrottles:    6,
		MaxElapsed:      config.Duration(time.Hour),
		InitialInterval: config.Duration(time.Second),
		MaxInterval:     config.Duration(5 * time.Minute),
		Multiplier:      2,
	}, c.Retry)
	require.Equal(t, []string{"ding", "popo"}, c.Names())

	ding, ok := c.Robot("ding")
	require.True(t, ok)
	require.Equal(t, limiter.Limit{Max: 20, Window: time.Minute, Margin: 5 * time.Second}, c.Limit(ding))
	require.Equal(t, 10*time.Minute, c.CoolOff(ding))
	popo, ok := c.Robot("popo")
	require.True(t, ok)
	require.Equal(t, limiter.Limit{Max: 60, Window: time.Minute, Margin: 5 * time.Second}, c.Limit(popo))
	require.Equal(t, 10*time.Minute, c.CoolOff(popo))
	_, ok = c.Robot("nobody")
	require.False(t, ok)

	require.Equal(t, delivery.Robot{Name: "ding", Platform: "dingtalk", Webhook: dingWebhook}, ding.Delivery())
	require.Equal(t, config.UnknownRepost, ding.OnUnknownOutcome)
}

func TestParseOverrides(t *testing.T) {
	c, err := config.Parse([]byte(`
prefix: staging
concurrency: 4
retry:
  max_attempts: 3
  max_throttles: 2
  max_elapsed: 10m
  initial_interval: 500ms
  max_interval: 30s
  multiplier: 1.5
platforms:
  dingtalk:
    limit: 18
    margin: 5s
    cool_off: 15m
robots:
  - name: slow
    platform: dingtalk
    webhook: "`+dingWebhook+`"
    limit: 10
  - name: hourly
    platform: dingtalk
    webhook: "`+dingWebhook+`-hourly"
    limit: 18
    window: 1h
  - name: half
    platform: popo
    webhook: https://open.popo.netease.com/open-apis/robots/v1/hook/`+hookID+`
    limit: 30
    window: 30s
  - name: plain
    platform: dingtalk
    webhook: "`+dingWebhook+`-plain"
    on_unknown_outcome: dead_letter
`), noEnv)
	require.NoError(t, err)
	require.Equal(t, "staging", c.Prefix)
	require.Equal(t, 4, c.Concurrency)
	plain, _ := c.Robot("plain")
	require.Equal(t, config.UnknownDeadLetter, plain.OnUnknownOutcome)
	require.Equal(t, config.Retry{MaxAttempts: 3, MaxThrottles: 2, MaxElapsed: config.Duration(10 * time.Minute),
		InitialInterval: config.Duration(500 * time.Millisecond), MaxInterval: config.Duration(30 * time.Second), Multiplier: 1.5}, c.Retry)

	tests := []struct {
		robot   string
		want    limiter.Limit
		coolOff time.Duration
	}{
		{robot: "slow", want: limiter.Limit{Max: 10, Window: time.Minute, Margin: 5 * time.Second}, coolOff: 15 * time.Minute},
		{robot: "hourly", want: limiter.Limit{Max: 18, Window: time.Hour, Margin: 5 * time.Second}, coolOff: 15 * time.Minute},
		{robot: "half", want: limiter.Limit{Max: 30, Window: 30 * time.Second, Margin: 5 * time.Second}, coolOff: 10 * time.Minute},
		{robot: "plain", want: limiter.Limit{Max: 18, Window: time.Minute, Margin: 5 * time.Second}, coolOff: 15 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.robot, func(t *testing.T) {
			rb, ok := c.Robot(tt.robot)
			require.True(t, ok)
			require.Equal(t, tt.want, c.Limit(rb))
			require.Equal(t, tt.coolOff, c.CoolOff(rb))
		})
	}
}

func TestParseSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(file, []byte("\n  "+secret+"-file \n\n"), 0o600))

	c, err := config.Parse([]byte(`
robots:
  - name: inline
    platform: dingtalk
    webhook: "${INLINE_WEBHOOK}"
    secret: "${INLINE_SECRET}"
  - name: from-env
    platform: dingtalk
    webhook: "`+dingWebhook+`"
    secret_env: OPS_SECRET
    keywords: [alert, "告警"]
  - name: from_file
    platform: popo
    webhook: https://open.popo.netease.com/open-apis/robots/v1/hook/`+hookID+`
    secret_file: `+file+`
  - name: unsigned
    platform: popo
    webhook: https://open.popo.netease.com/open-apis/robots/v1/hook/`+hookID+`-unsigned
`), env(map[string]string{
		"INLINE_WEBHOOK": dingWebhook + "-inline",
		"INLINE_SECRET":  secret + "-inline",
		"OPS_SECRET":     secret + "-env",
	}))
	require.NoError(t, err)
	want := map[string]delivery.Robot{
		"inline":    {Name: "inline", Platform: "dingtalk", Webhook: dingWebhook + "-inline", Secret: secret + "-inline"},
		"from-env":  {Name: "from-env", Platform: "dingtalk", Webhook: dingWebhook, Secret: secret + "-env", Keywords: []string{"alert", "告警"}},
		"from_file": {Name: "from_file", Platform: "popo", Webhook: "https://open.popo.netease.com/open-apis/robots/v1/hook/" + hookID, Secret: secret + "-file"},
		"unsigned":  {Name: "unsigned", Platform: "popo", Webhook: "https://open.popo.netease.com/open-apis/robots/v1/hook/" + hookID + "-unsigned"},
	}
	for name, w := range want {
		rb, ok := c.Robot(name)
		require.True(t, ok, name)
		require.Equal(t, w, rb.Delivery(), name)
	}
}

func TestParseExpansion(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want string // the prefix after expansion
	}{
		{name: "plain", yaml: "prefix: ${P}\n", env: map[string]string{"P": "abc"}, want: "abc"},
		{name: "inside a value", yaml: "prefix: x${P}y\n", env: map[string]string{"P": "abc"}, want: "xabcy"},
		{name: "set but empty gives the default", yaml: "prefix: \"${P}\"\n", env: map[string]string{"P": ""}, want: "botrelay"},
		{name: "whole-line comment not expanded", yaml: "# prefix: ${UNSET}\n  # also ${UNSET2}\nprefix: p\n", want: "p"},
		{name: "no braces no expansion", yaml: "prefix: $P\n", want: "$P"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.yaml+"robots:\n"+robotYAML("a")), env(tt.env))
			if tt.want == "$P" { // not a valid prefix: proves it was left alone
				require.ErrorContains(t, err, "prefix: must be")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, c.Prefix)
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "robots.yaml")
	require.NoError(t, os.WriteFile(path, []byte("robots:\n"+robotYAML("ops")), 0o600))
	c, err := config.Load(path)
	require.NoError(t, err)
	require.Equal(t, []string{"ops"}, c.Names())

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("robots: []\n"), 0o600))
	_, err = config.Load(bad)
	require.ErrorIs(t, err, config.ErrInvalid)
	require.ErrorContains(t, err, bad+": ")

	_, err = config.Load(filepath.Join(dir, "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestExampleFile parses the documented example in examples/robots.yaml
// with the variables its header lists.
func TestExampleFile(t *testing.T) {
	data, err := os.ReadFile("../../examples/robots.yaml")
	require.NoError(t, err)
	vars := map[string]string{
		"DINGTALK_OPS_WEBHOOK": dingWebhook,
		"DINGTALK_OPS_SECRET":  secret,
		"POPO_DEPLOY_WEBHOOK":  "https://open.popo.netease.com/open-apis/robots/v1/hook/" + hookID,
	}
	c, err := config.Parse(data, env(vars))
	require.NoError(t, err)
	require.Equal(t, []string{"ops-alerts", "deploys"}, c.Names())

	ops, _ := c.Robot("ops-alerts")
	require.Equal(t, "dingtalk", ops.Platform)
	require.Equal(t, secret, ops.Secret)
	require.NotEmpty(t, ops.Keywords)
	require.Equal(t, dingWebhook, ops.Webhook)
	deploys, _ := c.Robot("deploys")
	require.Equal(t, "popo", deploys.Platform)
	require.LessOrEqual(t, c.Limit(deploys).Max, 60)

	// Every variable the file needs is listed above: each one missing is
	// reported by name.
	for name := range vars {
		partial := map[string]string{}
		for k, v := range vars {
			if k != name {
				partial[k] = v
			}
		}
		_, err := config.Parse(data, env(partial))
		require.ErrorContains(t, err, name)
	}
}

func TestAckWait(t *testing.T) {
	base := "robots:\n  - {name: a, platform: popo, webhook: 'https://h/open-apis/robots/v1/hook/x'}\n"
	for _, tt := range []struct {
		name string
		yaml string
		want time.Duration
		err  string
	}{
		{name: "default", yaml: base, want: 30 * time.Second},
		{name: "set", yaml: "ack_wait: 5s\n" + base, want: 5 * time.Second},
		{name: "too short", yaml: "ack_wait: 100ms\n" + base, err: "ack_wait: must be at least 2s (workers heartbeat every third of it), got 100ms"},
		{name: "below the floor", yaml: "ack_wait: 1s\n" + base, err: "ack_wait: must be at least 2s"},
		{name: "replicas", yaml: "replicas: 7\n" + base, err: "replicas: must be 1 to 5, got 7"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.yaml), func(string) (string, bool) { return "", false })
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, time.Duration(c.AckWait))
			require.Equal(t, 10*time.Second, time.Duration(c.HoldMax))
			require.Equal(t, 1, c.Replicas)
		})
	}
}

func TestLaneSettings(t *testing.T) {
	base := "robots:\n  - {name: a, platform: popo, webhook: 'https://h/open-apis/robots/v1/hook/x'}\n"
	for _, tt := range []struct {
		name           string
		yaml           string
		idle, interval time.Duration
		lanes          string
		err            string
	}{
		{name: "defaults", yaml: base, idle: 10 * time.Second, interval: 10 * time.Second, lanes: "direct"},
		{name: "set", yaml: "lane_idle: 2m\nscan_interval: 5s\nlanes: consumer\n" + base, idle: 2 * time.Minute, interval: 5 * time.Second, lanes: "consumer"},
		{name: "lanes unknown", yaml: "lanes: pull\n" + base, err: `lanes: must be "consumer" or "direct", got "pull"`},
		{name: "idle too short", yaml: "lane_idle: 10ms\n" + base, err: "lane_idle: must be at least 1s, got 10ms"},
		{name: "scan too short", yaml: "scan_interval: -1s\n" + base, err: "scan_interval: must be at least 1s, got -1s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.yaml), func(string) (string, bool) { return "", false })
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.idle, time.Duration(c.LaneIdle))
			require.Equal(t, tt.interval, time.Duration(c.ScanInterval))
			require.Equal(t, tt.lanes, c.Lanes)
		})
	}
}

func TestErrcodeRules(t *testing.T) {
	const robots = "robots:\n  - {name: a, platform: popo, webhook: 'https://h/open-apis/robots/v1/hook/x'}\n"
	good := `platforms:
  popo:
    errcodes:
      - {codes: [777], outcome: throttled, reason: "popo rate limit"}
      - {contains: ["稍后重试"], outcome: retryable, retry_after: 30s}
      - {codes: [4290], outcome: wait, retry_after: 2m}
` + robots
	c, err := config.Parse([]byte(good), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	rules := c.Rules(config.POPO)
	require.Equal(t, []delivery.Rule{
		{Codes: []int{777}, Outcome: delivery.Throttled, Reason: "popo rate limit"},
		{Contains: []string{"稍后重试"}, Outcome: delivery.Retryable, RetryAfter: 30 * time.Second},
		{Codes: []int{4290}, Outcome: delivery.Wait, RetryAfter: 2 * time.Minute},
	}, rules)
	require.Empty(t, c.Rules(config.DingTalk))

	// The rules reach the classifier ahead of the built-in ones.
	d, err := delivery.New(delivery.WithRules(config.POPO, rules...))
	require.NoError(t, err)
	res := d.Classify(config.POPO, delivery.Response{StatusCode: 200, Body: []byte(`{"errcode":777,"errmsg":"x"}`)})
	require.Equal(t, delivery.Throttled, res.Outcome)
	res = d.Classify(config.POPO, delivery.Response{StatusCode: 200, Body: []byte(`{"errcode":9,"errmsg":"请稍后重试"}`)})
	require.Equal(t, delivery.Retryable, res.Outcome)
	require.Equal(t, 30*time.Second, res.RetryAfter)
	res = d.Classify(config.POPO, delivery.Response{StatusCode: 200, Body: []byte(`{"errcode":4290,"errmsg":"later"}`)})
	require.Equal(t, delivery.Wait, res.Outcome)
	require.Equal(t, 2*time.Minute, res.RetryAfter)

	for _, tt := range []struct{ name, rule, want string }{
		{"bad outcome", "{codes: [1], outcome: success}", `errcodes[0]: outcome: must be retryable, throttled, wait or permanent`},
		{"matches nothing", "{outcome: permanent}", "errcodes[0]: set codes or contains"},
		{"code zero", "{codes: [0], outcome: permanent}", "errcodes[0]: codes: errcode 0 is always success"},
		{"empty text", "{contains: [''], outcome: permanent}", "errcodes[0]: contains: empty text"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte("platforms:\n  popo:\n    errcodes:\n      - "+tt.rule+"\n"+robots),
				func(string) (string, bool) { return "", false })
			require.ErrorIs(t, err, config.ErrInvalid)
			require.ErrorContains(t, err, "platforms.popo."+tt.want)
		})
	}
}
