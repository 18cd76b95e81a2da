package delivery_test

import (
	"fmt"

	"github.com/botrelay/botrelay/pkg/delivery"
)

// LookupPlatform gives everything botrelay knows of a platform: its
// default windows, cool-off and size rules, and where its webhook holds
// the credential.
func ExampleLookupPlatform() {
	p, _ := delivery.LookupPlatform(delivery.PlatformFeishu)
	fmt.Println(p.Title, p.Webhook)
	for _, w := range p.Limits {
		fmt.Printf("%d per %s\n", w.Max, w.Window)
	}
	fmt.Println("cool-off", p.CoolOff, "signed", p.Signed, "keywords", p.Keywords)
	// Output:
	// Feishu/Lark https://open.feishu.cn/open-apis/bot/v2/hook/{token}
	// 100 per 1m0s
	// 5 per 1s
	// cool-off 1m0s signed true keywords true
}

// Credential finds a robot's credential in its webhook; it names the robot
// (its identity) and is scrubbed from every result. Never log it.
func ExamplePlatform_Credential() {
	p, _ := delivery.LookupPlatform(delivery.PlatformWeCom)
	fmt.Println(p.Credential("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6"))
	fmt.Printf("%q\n", p.Credential("https://qyapi.weixin.qq.com/cgi-bin/webhook/send"))
	// Output:
	// 693a91f6
	// ""
}

// PlatformNames lists every platform, in the order of the one list.
func ExamplePlatformNames() {
	fmt.Println(delivery.PlatformNames())
	// Output: [dingtalk popo feishu wecom]
}
