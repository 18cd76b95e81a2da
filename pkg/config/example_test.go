package config_test

import (
	"fmt"

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
	//   robots[0] "ops alerts": name: must be 1-64 characters of [A-Za-z0-9_-]
	//   robots[0] "ops alerts": platform: "slack" is not supported (want dingtalk, popo, feishu, wecom)
	//   robots[0] "ops alerts": webhook: scheme must be https (or http for a local simulator)
}
