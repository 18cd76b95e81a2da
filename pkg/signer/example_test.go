package signer_test

import (
	"fmt"
	"time"

	"github.com/botrelay/botrelay/pkg/signer"
)

func ExampleSignDingTalkURL() {
	// Sign at send time, afresh for every attempt.
	now := time.UnixMilli(1700000000000)
	u, err := signer.SignDingTalkURL("https://oapi.dingtalk.com/robot/send?access_token=TOKEN", "SECtest", now)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(u)
	// Output:
	// https://oapi.dingtalk.com/robot/send?access_token=TOKEN&sign=aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g%3D&timestamp=1700000000000
}

func ExamplePOPO() {
	timestamp, signData := signer.POPO("SECtest", time.UnixMilli(1700000000000))
	fmt.Printf(`{"message":"hello","timestamp":%q,"signData":%q}`+"\n", timestamp, signData)
	// Output:
	// {"message":"hello","timestamp":"1700000000000","signData":"BLUsdlw78Oq131zS5xV55ss6oovX+oA1150e7X7HiLY="}
}

func ExampleVerifyDingTalk() {
	signedAt := time.UnixMilli(1700000000000)
	ts, sign := signer.DingTalk("SECtest", signedAt)
	fmt.Println(signer.VerifyDingTalk("SECtest", ts, sign, signedAt.Add(59*time.Minute)))
	fmt.Println(signer.VerifyDingTalk("SECtest", ts, sign, signedAt.Add(61*time.Minute)))
	fmt.Println(signer.VerifyDingTalk("SECother", ts, sign, signedAt))
	// Output:
	// <nil>
	// signer: timestamp outside the accepted window: 1h1m0s off
	// signer: signature does not match
}

// Feishu signs with seconds, keyed by timestamp+"\n"+secret over an empty
// message; both fields go into the JSON body.
func ExampleFeishu() {
	ts, sign := signer.Feishu("SECtest", time.Unix(1700000000, 0))
	fmt.Println(ts, sign)
	// Output: 1700000000 G7XpBpG8NgG02fJOAhX6FRAObIljmFoxVReo8I62pEk=
}
