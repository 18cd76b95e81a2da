package config_test

import (
	"bytes"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/delivery"
)

// fuzzSecretValue is what every environment variable holds in FuzzParse;
// read through secret_env it is a secret and must never be echoed.
const fuzzSecretValue = "fuzzEnvS3cretValue42"

var fuzzNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// FuzzParse: any file either fails with an error matching ErrInvalid that
// never holds a secret read from the environment, or parses to a config
// every robot of which is usable: a valid unique name, a supported
// platform, an http(s) webhook with a host, at most 10 non-blank
// keywords, a positive rate limit, and errcode rules that
// delivery.WithRules accepts. Parse never panics. Files naming a
// secret_file are skipped: the fuzzer must not read the machine's files.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`robots:
  - name: ops-alerts
    platform: dingtalk
    webhook: "https://oapi.dingtalk.com/robot/send?access_token=tok"
    secret_env: DINGTALK_OPS_SECRET
    keywords: ["告警", "alert"]
`))
	f.Add([]byte(`prefix: botrelay
concurrency: 32
ack_wait: 30s
hold_max: 10s
replicas: 1
retry: {max_attempts: 8, max_elapsed: 1h, initial_interval: 1s, max_interval: 5m, multiplier: 2}
platforms:
  dingtalk: {limit: 20, window: 1m, margin: 5s, cool_off: 10m}
  popo:
    limit: 60
    errcodes:
      - {codes: [777], outcome: throttled, reason: "popo rate limit"}
      - {contains: ["稍后重试"], outcome: retryable, retry_after: 30s}
robots:
  - {name: deploys, platform: popo, webhook: "${POPO_DEPLOY_WEBHOOK}", limit: 30}
  - {name: b, platform: dingtalk, webhook: "http://127.0.0.1:8080/robot/send?access_token=x", secret: SECabc, window: 2m, limit: 5}
`))
	f.Add([]byte("robots:\n  - name: x\n    platform: wecom\n    webhook: ftp://h\n    secret: s\n    secret_env: E\n"))
	f.Add([]byte("robots: []\nreplicas: 9\nack_wait: 1ms\n"))
	f.Add([]byte("# ${COMMENTED}\nrobots:\n  - name: \"${NAME}\"\n    platform: popo\n    webhook: https://h/hook/${HOOK}\n"))
	f.Add([]byte("platforms:\n  popo:\n    errcodes:\n      - {codes: [0], outcome: wait}\n      - {outcome: maybe, retry_after: -1s}\n"))
	f.Add([]byte("robots:\n  - {name: a, platform: dingtalk, webhook: 'https://h/?access_token=t', limit: 21}\n  - {name: a}\n"))
	f.Add([]byte("robots:\n  - {name: a, platform: dingtalk, webhook: 'https://h/?access_token=t'}\n  - {name: b, platform: dingtalk, webhook: 'https://h/?access_token=u'}\n" +
		"pools:\n  - {name: p, robots: [a, b]}\ngroups:\n  - {name: g, members: [p]}\n  - {name: h, members: [g, a, a, p]}\n"))
	f.Add([]byte("{{{"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		if bytes.Contains(data, []byte("secret_file")) {
			t.Skip()
		}
		lookup := func(name string) (string, bool) {
			if name == "UNSET" {
				return "", false
			}
			if strings.HasPrefix(name, "WEBHOOK") {
				return "https://oapi.dingtalk.com/robot/send?access_token=" + name, true
			}
			return fuzzSecretValue, true
		}
		c, err := config.Parse(data, lookup)
		if err != nil {
			if c != nil {
				t.Fatalf("a config with an error: %v", err)
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			// A value expanded into the text may be echoed like any text;
			// one read through secret_env never is.
			if !bytes.Contains(data, []byte(fuzzSecretValue)) && !bytes.Contains(data, []byte("${")) &&
				strings.Contains(err.Error(), fuzzSecretValue) {
				t.Fatalf("error holds a secret read from the environment: %v", err)
			}
			return
		}
		if c == nil || len(c.Robots) == 0 {
			t.Fatalf("no error and no robots")
		}
		seen := map[string]bool{}
		for _, rb := range c.Robots {
			if !fuzzNameRE.MatchString(rb.Name) || seen[rb.Name] {
				t.Fatalf("bad or duplicate name %q", rb.Name)
			}
			seen[rb.Name] = true
			if rb.Platform != config.DingTalk && rb.Platform != config.POPO {
				t.Fatalf("robot %q: platform %q", rb.Name, rb.Platform)
			}
			u, err := url.Parse(rb.Webhook)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Fatalf("robot %q: unusable webhook", rb.Name)
			}
			if len(rb.Keywords) > 10 {
				t.Fatalf("robot %q: %d keywords", rb.Name, len(rb.Keywords))
			}
			for _, k := range rb.Keywords {
				if strings.TrimSpace(k) == "" {
					t.Fatalf("robot %q: blank keyword", rb.Name)
				}
			}
			if l := c.Limit(rb); l.Max <= 0 || l.Window <= 0 {
				t.Fatalf("robot %q: limit %+v", rb.Name, l)
			}
			if got, ok := c.Robot(rb.Name); !ok || got.Name != rb.Name {
				t.Fatalf("robot %q not found by name", rb.Name)
			}
		}
		for _, g := range c.Groups {
			members, err := c.Expand(g.Name)
			if err != nil || len(members) == 0 {
				t.Fatalf("group %q: %v %v", g.Name, members, err)
			}
			for _, m := range members {
				if _, ok := c.TargetPlatform(m); !ok {
					t.Fatalf("group %q: member %q has no platform", g.Name, m)
				}
			}
		}
		if c.Concurrency <= 0 || c.Replicas < 1 || c.Replicas > 5 || c.Retry.MaxAttempts < 1 {
			t.Fatalf("bad settings: %+v", c)
		}
		for _, p := range []string{config.DingTalk, config.POPO} {
			if _, err := delivery.New(delivery.WithRules(p, c.Rules(p)...)); err != nil {
				t.Fatalf("config accepted rules delivery refuses: %v", err)
			}
		}
	})
}
