package delivery

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Credentials the fuzzed answers may echo; the scrubbed Result must not.
const (
	fuzzToken  = "fuzzTok3nAbCdEf012345"
	fuzzSecret = "SECfuzzS3cretXyZ987654"
	fuzzHook   = "fuzzHookId0123456789ab"
)

// FuzzClassify: for any HTTP status, Retry-After header, body and cap,
// Classify returns a valid outcome (never NotSent, which only Deliver
// decides), keeps the status, bounds RetryAfter to [0, cap] (a Wait's is
// positive), gives every failure an error and a reason and Success
// neither; it is deterministic, and once scrubbed as Deliver scrubs it
// the Result's texts hold none of the robot's credentials (its token or
// hook id and its secret, fuzzed too), whatever the body echoes.
func FuzzClassify(f *testing.F) {
	for _, s := range []struct {
		status     int
		retryAfter string
		body       string
	}{
		{200, "", `{"errcode":0,"errmsg":"ok"}`},
		{200, "", `{"data":{"msgId":12345},"errcode":0,"errmsg":"ok"}`},
		{200, "", `{"errcode":310000,"errmsg":"sign not match ` + fuzzSecret + `"}`},
		{200, "", `{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`},
		{200, "", `{"errcode":90030,"errmsg":"webhook over limit"}`},
		{200, "", `{"errcode":-1,"errmsg":"系统繁忙 access_token=` + fuzzToken + `"}`},
		{200, "", `{"status":1111,"wait":1e9,"msg":"/open-apis/robots/v1/hook/` + fuzzHook + `"}`},
		{200, "", `{"status":"1111","wait":"NaN"}`},
		{200, "", `{"status":1111,"wait":-5}`},
		{429, "1000000000", ""},
		{429, "Fri, 31 Dec 9999 23:59:59 GMT", ""},
		{429, "Mon, 01 Jan 1900 00:00:00 GMT", ""},
		{429, "1.5e300", ""},
		{503, "-1", "oops"},
		{502, "", `{"errcode":-1,"errmsg":"busy"}`},
		{403, "", `{"errcode":0}`},
		{302, "", ""},
		{200, "", `<html>` + fuzzToken + `</html>`},
		{200, "", `{"errcode":9007199254740993}`},
		{0, "", ""},
		{-1, "", `{"errcode":"1e400"}`},
	} {
		for _, platform := range []uint8{0, 1} {
			f.Add(platform, s.status, s.retryAfter, []byte(s.body), uint32(300), "")
		}
	}
	f.Add(uint8(0), 429, "", []byte(""), uint32(0), "")
	f.Add(uint8(1), 200, "", []byte(`{"errcode":10003,"errmsg":"DDRRDR"}`), uint32(7), "DR")
	f.Fuzz(func(t *testing.T, platformSel uint8, status int, retryAfterHeader string, body []byte, capSeconds uint32, secret string) {
		if len(secret) < 8 {
			secret = fuzzSecret
		}
		platform, webhook, credential := PlatformDingTalk, "https://oapi.dingtalk.com/robot/send?access_token="+fuzzToken, fuzzToken
		if platformSel%2 == 1 {
			platform, webhook, credential = PlatformPOPO, "https://open.popo.netease.com/open-apis/robots/v1/hook/"+fuzzHook, fuzzHook
		}
		cap := time.Duration(capSeconds%100000+1) * time.Millisecond * 10
		d, err := New(WithClock(func() time.Time { return testNow }), WithMaxRetryAfter(cap))
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		if retryAfterHeader != "" {
			h.Set("Retry-After", retryAfterHeader)
		}
		resp := Response{StatusCode: status, Header: h, Body: body}
		res := d.Classify(platform, resp)

		if !res.Outcome.Valid() || res.Outcome == NotSent {
			t.Fatalf("invalid outcome %d: %+v", res.Outcome, res)
		}
		if res.HTTPStatus != status {
			t.Fatalf("HTTPStatus %d, want %d", res.HTTPStatus, status)
		}
		if res.RetryAfter < 0 || res.RetryAfter > cap {
			t.Fatalf("RetryAfter %s outside [0, %s]: %+v", res.RetryAfter, cap, res)
		}
		if res.Outcome == Wait && res.RetryAfter <= 0 {
			t.Fatalf("a Wait without RetryAfter: %+v", res)
		}
		if res.Outcome == Success {
			if res.Err != nil || status < 200 || status > 299 || res.ErrCode != 0 {
				t.Fatalf("bad success: %+v", res)
			}
		} else if res.Err == nil || res.Reason == "" {
			t.Fatalf("a failure without Err or Reason: %+v", res)
		}
		if again := d.Classify(platform, resp); fmt.Sprint(again) != fmt.Sprint(res) {
			t.Fatalf("not deterministic:\n%+v\n%+v", res, again)
		}

		robot := Robot{Name: "fz", Platform: platform, Webhook: webhook, Secret: secret}
		clean := newScrubber(robot).result(res)
		dump := fmt.Sprintf("%s\n%s\n%s", clean.ErrMsg, clean.Reason, clean.MessageID)
		if clean.Err != nil {
			dump += "\n" + clean.Err.Error()
		}
		for _, secret := range []string{credential, secret} {
			if strings.Contains(dump, secret) {
				t.Fatalf("credential %q in the scrubbed result: %s", secret, dump)
			}
		}
		if res.Err != nil && !errors.Is(clean.Err, unwrapFirst(res.Err)) {
			t.Fatalf("scrubbing lost the error's identity: %v", clean.Err)
		}
	})
}

// unwrapFirst returns the package sentinel err wraps, or err.
func unwrapFirst(err error) error {
	for _, s := range []error{ErrRefused, ErrHTTPStatus, ErrBadResponse} {
		if errors.Is(err, s) {
			return s
		}
	}
	return err
}
