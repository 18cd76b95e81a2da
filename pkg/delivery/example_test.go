package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
)

func ExampleDeliverer_Deliver() {
	// A stand-in for oapi.dingtalk.com: the first answer is DingTalk's
	// "too fast" refusal (HTTP 200!), the second a success.
	answers := []string{
		`{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`,
		`{"errcode":0,"errmsg":"ok"}`,
	}
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, answers[n%len(answers)])
		n++
	}))
	defer srv.Close()

	d, err := delivery.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	robot := delivery.Robot{
		Name:     "ops",
		Platform: delivery.PlatformDingTalk,
		Webhook:  srv.URL + "/robot/send?access_token=secret-token",
		Secret:   "SECsigning-secret",
	}
	env := &envelope.Envelope{V: 1, ID: "msg-1", Robot: "ops",
		Message: envelope.Message{Text: &envelope.Text{Content: "disk full"}}}

	for range 2 {
		res := d.Deliver(context.Background(), robot, env)
		fmt.Println(res.Outcome, res.ErrCode, res.Reason)
	}
	// Output:
	// throttled 130101 send too fast
	// success 0
}

func ExampleCheckKeywords() {
	robot := delivery.Robot{Name: "ops", Platform: delivery.PlatformDingTalk, Keywords: []string{"[alert]"}}
	env := &envelope.Envelope{ID: "m", Message: envelope.Message{Text: &envelope.Text{Content: "disk full"}}}
	err := delivery.CheckKeywords(robot, env)
	fmt.Println(errors.Is(err, delivery.ErrMissingKeyword))
	env.Message.Text.Content = "[alert] disk full"
	fmt.Println(delivery.CheckKeywords(robot, env))
	// Output:
	// true
	// <nil>
}

func ExampleRedact() {
	fmt.Println(delivery.Redact("https://oapi.dingtalk.com/robot/send?access_token=0123abcd"))
	fmt.Println(delivery.Redact("https://open.popo.netease.com/open-apis/robots/v1/hook/9f8e7d6c"))
	// Output:
	// https://oapi.dingtalk.com/robot/send
	// https://open.popo.netease.com/open-apis/robots/v1/hook/REDACTED
}

func ExampleDeliverer_Classify() {
	d, _ := delivery.New(delivery.WithRules(delivery.PlatformPOPO,
		delivery.Rule{Codes: []int{42}, Outcome: delivery.Throttled, Reason: "popo: slow down"}))
	for _, body := range []string{
		`{"errcode":0,"errmsg":"ok","data":{"msgId":"77"}}`,
		`{"errcode":42,"errmsg":"?"}`,
		`{"errcode":31337,"errmsg":"new"}`,
		`<html>captive portal</html>`,
	} {
		res := d.Classify(delivery.PlatformPOPO, delivery.Response{StatusCode: 200, Body: []byte(body)})
		fmt.Printf("%s %q %q\n", res.Outcome, res.MessageID, res.Reason)
	}
	// Output:
	// success "77" ""
	// throttled "" "popo: slow down"
	// permanent "" "unknown errcode 31337"
	// retryable "" "response is not a platform answer"
}

func ExampleWithMaxRetryAfter() {
	d, err := delivery.New(delivery.WithMaxRetryAfter(2 * time.Minute))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, resp := range []delivery.Response{
		{StatusCode: 429, Header: http.Header{"Retry-After": {"1000000000"}}},
		{StatusCode: 200, Body: []byte(`{"status":1111,"wait":5}`)},
		{StatusCode: 200, Body: []byte(`{"errcode":90030,"errmsg":"webhook over limit"}`)},
	} {
		res := d.Classify(delivery.PlatformDingTalk, resp)
		fmt.Println(res.Outcome, res.RetryAfter, res.ErrCode)
	}
	// Output:
	// wait 2m0s 0
	// wait 5s 1111
	// wait 2m0s 90030
}

func ExampleWithWriteDeadline() {
	d, err := delivery.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	robot := delivery.Robot{Name: "ops", Platform: delivery.PlatformDingTalk,
		Webhook: "https://oapi.dingtalk.com/robot/send?access_token=secret-token"}
	env := &envelope.Envelope{V: 1, ID: "msg-1", Robot: "ops",
		Message: envelope.Message{Text: &envelope.Text{Content: "disk full"}}}

	// The worker's rate slot was granted a while ago: the request must be
	// written within the limiter's margin of it, which has passed.
	granted := time.Now().Add(-10 * time.Second)
	ctx := delivery.WithWriteDeadline(context.Background(), granted.Add(5*time.Second))
	res := d.Deliver(ctx, robot, env)
	fmt.Println(res.Outcome, errors.Is(res.Err, delivery.ErrWriteDeadline))
	// Output:
	// not_sent true
}
