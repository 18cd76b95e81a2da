package delivery_test

import (
	"fmt"

	"github.com/botrelay/botrelay/pkg/delivery"
)

// A permanent refusal is the robot's (another robot of the same group
// would take the message) or the message's (no robot would).
func ExampleResult_Fault() {
	d, _ := delivery.New()
	for _, body := range []string{
		`{"errcode":400102,"errmsg":"robot is disabled"}`,
		`{"errcode":310000,"errmsg":"keywords not in content"}`,
		`{"errcode":130101,"errmsg":"send too fast"}`,
	} {
		res := d.Classify(delivery.PlatformDingTalk, delivery.Response{StatusCode: 200, Body: []byte(body)})
		fmt.Println(res.Outcome, res.Fault())
	}
	// Output:
	// permanent robot
	// permanent message
	// throttled none
}
