package config_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/botrelay/botrelay/pkg/config"
)

func ExampleParse() {
	yaml := []byte(`
robots:
  - name: ops-alerts
    platform: dingtalk
    webhook: "${OPS_WEBHOOK}"
    secret_env: OPS_SECRET
    keywords: [alert]
  - name: deploys
    platform: popo
    webhook: https://open.popo.netease.com/open-apis/robots/v1/hook/0123abcd
    limit: 30
`)
	// Parse takes the environment as a function; Load uses os.LookupEnv.
	lookup := func(name string) (string, bool) {
		v, ok := map[string]string{
			"OPS_WEBHOOK": "https://oapi.dingtalk.com/robot/send?access_token=abc123",
			"OPS_SECRET":  "SEC0123456789",
		}[name]
		return v, ok
	}
	c, err := config.Parse(yaml, lookup)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, rb := range c.Robots {
		l := c.Limit(rb)
		fmt.Printf("%s (%s): %d per %s, margin %s, cool-off %s, signed %t\n",
			rb.Name, rb.Platform, l.Max, l.Window, l.Margin, c.CoolOff(rb), rb.Secret != "")
	}

	// Every problem is reported, none with a secret or a token.
	_, err = config.Parse([]byte(`
robots:
  - name: ops alerts
    platform: slack
    webhook: "ftp://example.com/send?access_token=abc123"
    limit: 25
`), lookup)
	fmt.Println(err)
	// Output:
	// ops-alerts (dingtalk): 20 per 1m0s, margin 5s, cool-off 10m0s, signed true
	// deploys (popo): 30 per 1m0s, margin 5s, cool-off 10m0s, signed false
	// config: invalid:
	//   robots[0]: name: must be 1-64 characters of [A-Za-z0-9_-]
	//   robots[0]: platform: not supported (want dingtalk, popo, feishu, wecom)
	//   robots[0]: webhook: scheme must be https (or http for a local simulator)
}

// A webhook over plain http:// outside the loopback is allowed, with a warning.
func ExampleConfig_Warnings() {
	cfg, err := config.Parse([]byte(`robots:
  - name: ops
    platform: dingtalk
    webhook: "http://oapi.dingtalk.com/robot/send?access_token=${TOKEN}"
`), func(string) (string, bool) { return "t0ken", true })
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, w := range cfg.Warnings() {
		fmt.Println(w)
	}
	// Output: robots[0] "ops": webhook: http:// to a host other than the loopback sends the robot's token in clear text; use https
}

// RobotIdentity names the platform robot a webhook posts to: the same for
// every spelling of one webhook, and the key of its rate window.
func ExampleRobotIdentity() {
	for _, webhook := range []string{
		"https://oapi.dingtalk.com/robot/send?access_token=abc123",
		"https://OAPI.dingtalk.com/robot/send/?timestamp=1&access_token=abc123",
	} {
		id, err := config.RobotIdentity(config.DingTalk, webhook)
		fmt.Println(id, err)
	}
	_, err := config.RobotIdentity(config.POPO, "https://open.popo.netease.com/open-apis/robots/v1/")
	fmt.Println(err)
	// Output:
	// dingtalk-58f801d866d3d6305a08073d <nil>
	// dingtalk-58f801d866d3d6305a08073d <nil>
	// no hook id in the path (want https://open.popo.netease.com/open-apis/robots/v1/hook/{id})
}

func ExampleCompare() {
	old, _ := config.Parse([]byte(`
robots:
  - {name: ops, platform: popo, webhook: "https://open.popo.netease.com/open-apis/robots/v1/hook/a1"}
  - {name: dev, platform: popo, webhook: "https://open.popo.netease.com/open-apis/robots/v1/hook/b2"}
`), nil)
	next, _ := config.Parse([]byte(`
concurrency: 8
robots:
  - {name: ops, platform: popo, webhook: "https://open.popo.netease.com/open-apis/robots/v1/hook/a1", limit: 30}
  - {name: qa, platform: popo, webhook: "https://open.popo.netease.com/open-apis/robots/v1/hook/c3"}
`), nil)
	d := config.Compare(old, next)
	fmt.Println("added", d.Added, "changed", d.Changed, "removed", d.Removed)
	fmt.Println("needs a restart", d.Restart)
	// Output:
	// added [qa] changed [ops] removed [dev]
	// needs a restart [concurrency]
}

func ExampleWatcher() {
	dir, _ := os.MkdirTemp("", "watch")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "robots.yaml")
	_ = os.WriteFile(path, []byte("v1"), 0o644)

	w, _ := config.NewWatcher(path) // Run polls every 2s; Check polls once
	_, changed := w.Check(false)
	fmt.Println("changed:", changed)

	_ = os.WriteFile(path+".new", []byte("v2"), 0o644)
	_ = os.Rename(path+".new", path) // an editor's save
	c, changed := w.Check(false)
	fmt.Println("changed:", changed, string(c.Data))

	// A forced check is what Trigger (on SIGHUP) makes Run do: the
	// content is reported, changed or not.
	c, _ = w.Check(true)
	fmt.Println("forced:", c.Forced, string(c.Data))
	// Output:
	// changed: false
	// changed: true v2
	// forced: true v2
}

func ExampleProblems() {
	_, err := config.Parse([]byte(`
concurrency: -1
robots:
  - {name: ops, platform: slack, webhook: "https://example.com/hook"}
`), nil)
	for _, p := range config.Problems(err) {
		fmt.Println(p)
	}
	// Output:
	// concurrency: must be positive, got -1
	// robots[0] "ops": platform: not supported (want dingtalk, popo, feishu, wecom)
}
