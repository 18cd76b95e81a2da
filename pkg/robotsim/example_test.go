package robotsim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/signer"
)

func ExampleNewServer() {
	srv := robotsim.NewServer(robotsim.Config{})
	defer srv.Close()
	_ = srv.AddRobot(robotsim.Robot{
		Platform: robotsim.PlatformDingTalk,
		Token:    "example-token",
		Secret:   "SECexample",
		Keywords: []string{"alert"},
	})

	url, _ := signer.SignDingTalkURL(srv.WebhookURL("example-token"), "SECexample", time.Now())
	for _, content := range []string{"alert: disk full", "no keyword here"} {
		body := `{"msgtype":"text","text":{"content":"` + content + `"}}`
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			fmt.Println(err)
			return
		}
		var answer struct {
			ErrCode int    `json:"errcode"`
			ErrMsg  string `json:"errmsg"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&answer)
		_ = resp.Body.Close()
		fmt.Println(resp.StatusCode, answer.ErrCode, answer.ErrMsg)
	}

	fmt.Println(srv.Received("example-token")[0].Content)
	fmt.Printf("%+v\n", srv.Stats("example-token"))
	// Output:
	// 200 0 ok
	// 200 310000 keywords not in content
	// alert: disk full
	// {Requests:2 Accepted:1 Rejected:1 Breaches:0 DuringBan:0 Duplicates:0 SignatureFailures:0 Faulted:0 RepeatedContent:0}
}

func ExampleSim_InjectFault() {
	srv := robotsim.NewServer(robotsim.Config{})
	defer srv.Close()
	_ = srv.AddRobot(robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: "hook"})
	srv.InjectFault("hook", robotsim.Fault{Status: http.StatusServiceUnavailable, Count: 2})

	for range 3 {
		resp, err := http.Post(srv.WebhookURL("hook"), "application/json", strings.NewReader(`{"message":"hi"}`))
		if err != nil {
			fmt.Println(err)
			return
		}
		_ = resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	fmt.Println(len(srv.Received("hook")))
	// Output:
	// 503
	// 503
	// 200
	// 1
}

// A worker's webhook names the robot the simulator serves.
func ExampleTokenFromWebhook() {
	tok, err := robotsim.TokenFromWebhook(robotsim.PlatformPOPO, "http://127.0.0.1:8089/open-apis/robots/v1/hook/h-42")
	fmt.Println(tok, err)
	_, err = robotsim.TokenFromWebhook(robotsim.PlatformDingTalk, "https://oapi.dingtalk.com/robot/send")
	fmt.Println(err)
	// Output:
	// h-42 <nil>
	// robotsim: no token in webhook (dingtalk)
}
