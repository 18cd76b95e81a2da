package delivery

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestDeliverer(t *testing.T, opts ...Option) *Deliverer {
	t.Helper()
	d, err := New(append([]Option{WithClock(func() time.Time { return testNow })}, opts...)...)
	require.NoError(t, err)
	return d
}

type classifyCase struct {
	name       string
	status     int
	header     http.Header
	body       string
	want       Outcome
	code       int
	reason     string
	retryAfter time.Duration
	msgID      string
	errMsg     string
	errIs      error
}

func runClassify(t *testing.T, d *Deliverer, platform string, tests []classifyCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := tt.status
			if status == 0 {
				status = http.StatusOK
			}
			res := d.Classify(platform, Response{StatusCode: status, Header: tt.header, Body: []byte(tt.body)})
			require.Equal(t, tt.want, res.Outcome, "result %+v", res)
			require.Equal(t, status, res.HTTPStatus)
			require.Equal(t, tt.code, res.ErrCode)
			if tt.reason != "" {
				require.Equal(t, tt.reason, res.Reason)
			}
			require.Equal(t, tt.retryAfter, res.RetryAfter)
			require.Equal(t, tt.msgID, res.MessageID)
			if tt.errMsg != "" {
				require.Equal(t, tt.errMsg, res.ErrMsg)
			}
			if tt.want == Success {
				require.NoError(t, res.Err)
				return
			}
			require.Error(t, res.Err)
			require.NotEmpty(t, res.Reason)
			if tt.errIs != nil {
				require.ErrorIs(t, res.Err, tt.errIs)
			}
		})
	}
}

func dt(code int, msg string) string {
	return fmt.Sprintf(`{"errcode":%d,"errmsg":%q}`, code, msg)
}

func TestClassifyDingTalk(t *testing.T) {
	d := newTestDeliverer(t)
	security := func(name, msg, reason string) classifyCase {
		return classifyCase{name: name, body: dt(310000, msg), want: Permanent, code: 310000, reason: reason, errIs: ErrRefused}
	}
	perm := func(code int, reason string) classifyCase {
		return classifyCase{name: fmt.Sprint(code), body: dt(code, "x"), want: Permanent, code: code, reason: reason, errIs: ErrRefused}
	}
	tests := []classifyCase{
		{name: "ok", body: dt(0, "ok"), want: Success},
		{name: "ok string errcode", body: `{"errcode":"0","errmsg":"ok"}`, want: Success},
		{name: "system busy", body: dt(-1, "系统繁忙"), want: Retryable, code: -1, reason: "system busy", errIs: ErrRefused},
		{name: "130101 too fast", body: dt(130101, "send too fast, exceed 20 times per minute"), want: Throttled, code: 130101, reason: "send too fast"},
		{name: "410100 too fast", body: dt(410100, "发送速度太快而限流"), want: Throttled, code: 410100, reason: "send too fast"},
		{name: "90030 quota waits the cap", body: dt(90030, "webhook over limit"), want: Wait, code: 90030, reason: "webhook over limit: quota used up", retryAfter: DefaultMaxRetryAfter, errIs: ErrRefused},
		security("310000 keywords", "keywords not in content", "keywords not in content"),
		security("310000 keywords zh", "description:关键词不匹配;solution:请联系群管理员查看此机器人的关键词", "keywords not in content"),
		security("310000 timestamp", "invalid timestamp", "invalid timestamp (check the clock)"),
		security("310000 timestamp zh", "description:时间戳无效;solution:…", "invalid timestamp (check the clock)"),
		security("310000 sign", "sign not match", "sign not match"),
		security("310000 sign zh", "description:签名不匹配;solution:请确认签名和生成签名的时间戳", "sign not match"),
		security("310000 whitelist", "ip 10.1.2.3 not in whitelist", "ip not in whitelist"),
		security("310000 whitelist zh", "description:ip地址不在白名单;solution:…", "ip not in whitelist"),
		security("310000 other", "something new", "security check failed"),
		perm(300001, "token does not exist"),
		perm(300005, "token does not exist"),
		perm(400101, "token does not exist"),
		perm(400013, "group disbanded"),
		perm(400102, "robot disabled"),
		perm(400105, "unsupported msgtype"),
		perm(400106, "robot does not exist"),
		perm(430101, "content rejected"),
		perm(430102, "content rejected"),
		perm(430103, "content rejected"),
		perm(430104, "content rejected"),
		perm(460101, "message too long"),
		perm(101002, "message too long"),
		perm(40035, "missing parameter"),
		perm(43002, "must be POST"),
		perm(43004, "wrong content type"),
		{name: "unknown code", body: dt(777777, "brand new"), want: Permanent, code: 777777, reason: "unknown errcode 777777", errIs: ErrRefused},
		{name: "unknown code, too fast text", body: dt(777778, "send too fast"), want: Throttled, code: 777778, reason: "send too fast"},
		{name: "unknown code, too fast zh", body: dt(777779, "发送速度太快"), want: Throttled, code: 777779, reason: "send too fast"},
		{name: "unknown code, busy text", body: dt(777780, "system busy, try later"), want: Retryable, code: 777780, reason: "system busy"},
		{name: "unknown code, over limit text", body: dt(777781, "webhook over limit"), want: Wait, code: 777781, retryAfter: DefaultMaxRetryAfter},
		{name: "unknown code, sign text", body: dt(777782, "sign not match"), want: Permanent, code: 777782, reason: "sign not match"},
		{name: "code wins over text", body: dt(400102, "send too fast"), want: Permanent, code: 400102, reason: "robot disabled"},
		{name: "refusal, status not a number", body: `{"errcode":300001,"errmsg":"token is not exist","status":"fail"}`, want: Permanent, code: 300001, reason: "token does not exist", errIs: ErrRefused},
		{name: "ok, data not an object", body: `{"errcode":0,"errmsg":"ok","data":"","status":[],"wait":"soon"}`, want: Success},
		{name: "ok, errmsg not a string", body: `{"errcode":0,"errmsg":null}`, want: Success},
		{name: "refusal, errmsg not a string", body: `{"errcode":310000,"errmsg":{"detail":"x"}}`, want: Permanent, code: 310000, reason: "security check failed"},
		{name: "errcode not a number", body: `{"errcode":"zero","errmsg":"ok"}`, want: Retryable, errIs: ErrBadResponse},
		{name: "JSON array", body: `[{"errcode":0}]`, want: Retryable, errIs: ErrBadResponse},
		{name: "anti-abuse gateway", body: `{"status":1111,"wait":5,"msg":"busy"}`, want: Wait, code: 1111, errMsg: "busy", retryAfter: 5 * time.Second},
		{name: "anti-abuse gateway on 403", status: 403, body: `{"status":1111,"wait":7}`, want: Wait, code: 1111, retryAfter: 7 * time.Second},
		{name: "anti-abuse gateway fractional wait", body: `{"status":1111,"wait":2.5}`, want: Wait, code: 1111, retryAfter: 2500 * time.Millisecond},
		{name: "anti-abuse gateway wait 1e9 is capped", body: `{"status":1111,"wait":1e9}`, want: Wait, code: 1111, retryAfter: DefaultMaxRetryAfter},
		{name: "anti-abuse gateway wait 2^53 is capped", body: `{"status":1111,"wait":9007199254740992}`, want: Wait, code: 1111, retryAfter: DefaultMaxRetryAfter},
		{name: "anti-abuse gateway wait beyond 2^53 is ignored", body: `{"status":1111,"wait":1e300}`, want: Wait, code: 1111, retryAfter: DefaultWait},
		{name: "anti-abuse gateway negative wait", body: `{"status":1111,"wait":-30}`, want: Wait, code: 1111, retryAfter: DefaultWait},
		{name: "anti-abuse gateway zero wait", body: `{"status":1111,"wait":0}`, want: Wait, code: 1111, retryAfter: DefaultWait},
		{name: "anti-abuse gateway tiny wait", body: `{"status":1111,"wait":0.001}`, want: Wait, code: 1111, retryAfter: MinWait},
		{name: "anti-abuse gateway wait as a string", body: `{"status":1111,"wait":"8"}`, want: Wait, code: 1111, retryAfter: 8 * time.Second},
		{name: "anti-abuse gateway no wait", body: `{"status":1111}`, want: Wait, code: 1111, retryAfter: DefaultWait},
		{name: "anti-abuse gateway wait not a number", body: `{"status":"1111","wait":"later"}`, want: Wait, code: 1111, retryAfter: DefaultWait},
		{name: "status zero is no gateway", body: `{"status":0}`, want: Retryable, errIs: ErrBadResponse},
		{name: "not JSON", body: "<html>proxy</html>", want: Retryable, reason: "response is not a platform answer", errIs: ErrBadResponse},
		{name: "empty body", body: "", want: Retryable, errIs: ErrBadResponse},
		{name: "JSON without errcode", body: `{"hello":1}`, want: Retryable, errIs: ErrBadResponse},
		{name: "204", status: 204, body: "", want: Retryable, errIs: ErrBadResponse},
		{name: "500", status: 500, body: "oops", want: Retryable, reason: "HTTP 500", errIs: ErrHTTPStatus},
		{name: "502 with errcode classified by errcode", status: 502, body: dt(-1, "busy"), want: Retryable, code: -1, reason: "system busy", errIs: ErrHTTPStatus},
		{name: "503 with errcode takes Retry-After", status: 503, header: http.Header{"Retry-After": {"30"}}, body: dt(-1, "busy"), want: Retryable, code: -1, retryAfter: 30 * time.Second, errIs: ErrRefused},
		{name: "500 with permanent errcode", status: 500, body: dt(310000, "sign not match"), want: Permanent, code: 310000, reason: "sign not match", errIs: ErrHTTPStatus},
		{name: "403 with throttle errcode", status: 403, body: dt(130101, "send too fast, exceed 20 times per minute"), want: Throttled, code: 130101, reason: "send too fast", errIs: ErrRefused},
		{name: "503 with errcode 0 goes by status", status: 503, body: dt(0, "ok"), want: Retryable, reason: "HTTP 503", errIs: ErrHTTPStatus},
		{name: "403 with errcode 0 goes by status", status: 403, body: dt(0, "ok"), want: Permanent, reason: "HTTP 403", errIs: ErrHTTPStatus},
		{name: "503 retry-after", status: 503, header: http.Header{"Retry-After": {"30"}}, want: Retryable, retryAfter: 30 * time.Second, errIs: ErrHTTPStatus},
		{name: "429", status: 429, want: Wait, reason: "HTTP 429", retryAfter: DefaultWait, errIs: ErrHTTPStatus},
		{name: "429 retry-after huge", status: 429, header: http.Header{"Retry-After": {"1000000000"}}, want: Wait, retryAfter: DefaultMaxRetryAfter},
		{name: "429 retry-after beyond int64", status: 429, header: http.Header{"Retry-After": {"99999999999999999999999"}}, want: Wait, retryAfter: DefaultMaxRetryAfter},
		{name: "429 retry-after negative", status: 429, header: http.Header{"Retry-After": {"-5"}}, want: Wait, retryAfter: DefaultWait},
		{name: "429 retry-after NaN", status: 429, header: http.Header{"Retry-After": {"NaN"}}, want: Wait, retryAfter: DefaultWait},
		{name: "429 retry-after date in the past", status: 429, header: http.Header{"Retry-After": {testNow.Add(-time.Hour).Format(http.TimeFormat)}}, want: Wait, retryAfter: DefaultWait},
		{name: "429 retry-after date far ahead", status: 429, header: http.Header{"Retry-After": {"Fri, 31 Dec 9999 23:59:59 GMT"}}, want: Wait, retryAfter: DefaultMaxRetryAfter},
		{name: "429 with errcode 0 goes by status", status: 429, body: dt(0, "ok"), want: Wait, retryAfter: DefaultWait, errIs: ErrHTTPStatus},
		{name: "503 retry-after huge is capped", status: 503, header: http.Header{"Retry-After": {"1000000000"}}, want: Retryable, retryAfter: DefaultMaxRetryAfter},
		{name: "429 retry-after seconds", status: 429, header: http.Header{"Retry-After": {"12"}}, want: Wait, retryAfter: 12 * time.Second},
		{name: "429 retry-after date", status: 429, header: http.Header{"Retry-After": {testNow.Add(90 * time.Second).Format(http.TimeFormat)}}, want: Wait, retryAfter: 90 * time.Second},
		{name: "408", status: 408, want: Retryable},
		{name: "400", status: 400, body: "bad", want: Permanent, reason: "HTTP 400", errIs: ErrHTTPStatus},
		{name: "401", status: 401, want: Permanent},
		{name: "403", status: 403, want: Permanent},
		{name: "404 with errcode classified by errcode", status: 404, body: dt(300001, "token is not exist"), want: Permanent, code: 300001, reason: "token does not exist", errIs: ErrHTTPStatus},
		{name: "302 not followed", status: 302, want: Permanent},
	}
	runClassify(t, d, PlatformDingTalk, tests)
}

func TestClassifyPOPO(t *testing.T) {
	d := newTestDeliverer(t)
	p := func(code int, msg string) string { return dt(code, msg) }
	tests := []classifyCase{
		{name: "ok with numeric msgId", body: `{"data":{"msgId":12345},"errcode":0,"errmsg":"ok"}`, want: Success, msgID: "12345"},
		{name: "ok with string msgId", body: `{"data":{"msgId":"m-1"},"errcode":0,"errmsg":"ok"}`, want: Success, msgID: "m-1"},
		{name: "ok no data", body: `{"errcode":0,"errmsg":"ok"}`, want: Success},
		{name: "ok, data a string", body: `{"errcode":0,"errmsg":"ok","data":""}`, want: Success},
		{name: "ok, data an array", body: `{"errcode":0,"errmsg":"ok","data":[]}`, want: Success},
		{name: "refusal, data an array", body: `{"errcode":10001,"errmsg":"robot not found","data":[]}`, want: Permanent, code: 10001, reason: "robot not found", errIs: ErrRefused},
		{name: "robot not found", body: p(POPOErrRobotNotFound, "robot not found"), want: Permanent, code: 10001, reason: "robot not found", errIs: ErrRefused},
		{name: "bad request", body: p(POPOErrBadRequest, "message missing"), want: Permanent, code: 10002, reason: "bad request"},
		{name: "invalid timestamp", body: p(POPOErrSignature, "invalid timestamp"), want: Permanent, code: 10003, reason: "invalid timestamp (check the clock)"},
		{name: "sign not match", body: p(POPOErrSignature, "sign not match"), want: Permanent, code: 10003, reason: "sign not match"},
		{name: "keywords", body: p(POPOErrKeywords, "keywords not in content"), want: Permanent, code: 10004, reason: "keywords not in content"},
		{name: "throttled", body: p(POPOErrThrottled, "send too fast, robot banned for 10 minutes"), want: Throttled, code: 10005, reason: "send too fast"},
		{name: "text too fast", body: p(20001, "request too fast"), want: Throttled, code: 20001},
		{name: "text frequency", body: p(20002, "frequency exceeded"), want: Throttled, code: 20002},
		{name: "text rate limit", body: p(20003, "rate limit"), want: Throttled, code: 20003},
		{name: "text rate limited", body: p(20003, "Rate limited, slow down"), want: Throttled, code: 20003},
		{name: "text exceeds limit is not a throttle", body: p(20013, "message size exceeds limit"), want: Permanent, code: 20013, reason: "unknown errcode 20013"},
		{name: "text character limit is not a throttle", body: p(20014, "content exceeds the 5000 character limit"), want: Permanent, code: 20014, reason: "unknown errcode 20014"},
		{name: "text limited ip is not a throttle", body: p(20015, "ip 10.1.2.3 is limited: not in whitelist"), want: Permanent, code: 20015, reason: "ip not in whitelist"},
		{name: "text length limit is not a rate limit", body: p(20004, "message length limit exceeded"), want: Permanent, code: 20004, reason: "message too long"},
		{name: "text sign", body: p(20005, "sign error"), want: Permanent, code: 20005, reason: "sign not match"},
		{name: "text keyword", body: p(20006, "keyword missing"), want: Permanent, code: 20006, reason: "keywords not in content"},
		{name: "text whitelist", body: p(20007, "ip not in whitelist"), want: Permanent, code: 20007, reason: "ip not in whitelist"},
		{name: "text not found", body: p(20008, "hook not found"), want: Permanent, code: 20008, reason: "robot not found"},
		{name: "text not exist", body: p(20009, "robot not exist"), want: Permanent, code: 20009, reason: "robot not found"},
		{name: "text busy", body: p(20010, "server busy"), want: Retryable, code: 20010, reason: "platform busy"},
		{name: "text timeout", body: p(20011, "upstream timeout"), want: Retryable, code: 20011, reason: "platform busy"},
		{name: "unknown", body: p(20012, "??"), want: Permanent, code: 20012, reason: "unknown errcode 20012", errIs: ErrRefused},
		{name: "not JSON", body: "Bad Gateway", want: Retryable, errIs: ErrBadResponse},
		{name: "500", status: 500, want: Retryable},
		{name: "429", status: 429, header: http.Header{"Retry-After": {"3"}}, want: Wait, retryAfter: 3 * time.Second},
		{name: "404", status: 404, want: Permanent},
		{name: "429 with throttle errcode", status: 429, body: p(POPOErrThrottled, "send too fast, robot banned for 10m0s"), want: Throttled, code: POPOErrThrottled, reason: "send too fast", errIs: ErrHTTPStatus},
	}
	runClassify(t, d, PlatformPOPO, tests)
}

func TestClassifyWithRules(t *testing.T) {
	d := newTestDeliverer(t,
		WithRules(PlatformPOPO,
			Rule{Codes: []int{42}, Outcome: Throttled, Reason: "popo says slow down"},
			Rule{Codes: []int{POPOErrKeywords}, Outcome: Retryable}, // override a default
			Rule{Contains: []string{"Maintenance"}, Outcome: Retryable, RetryAfter: time.Minute},
		),
		WithRules(PlatformDingTalk, Rule{Codes: []int{90030}, Outcome: Retryable, Reason: "quota", RetryAfter: 6 * time.Hour}),
		WithMaxRetryAfter(12*time.Hour),
	)
	runClassify(t, d, PlatformPOPO, []classifyCase{
		{name: "new code", body: dt(42, "x"), want: Throttled, code: 42, reason: "popo says slow down"},
		{name: "override, reason from errmsg", body: dt(POPOErrKeywords, "kw"), want: Retryable, code: POPOErrKeywords, reason: "kw"},
		{name: "text rule, case-insensitive", body: dt(99, "under maintenance"), want: Retryable, code: 99, retryAfter: time.Minute},
		{name: "default still there", body: dt(POPOErrThrottled, "x"), want: Throttled, code: POPOErrThrottled},
	})
	runClassify(t, d, PlatformDingTalk, []classifyCase{
		{name: "override 90030", body: dt(90030, "webhook over limit"), want: Retryable, code: 90030, reason: "quota", retryAfter: 6 * time.Hour},
		{name: "popo rule does not leak", body: dt(42, "x"), want: Permanent, code: 42},
	})
	// The defaults are copies: changing them changes nothing.
	rs := DefaultRules(PlatformDingTalk)
	rs[0].Outcome = Success
	rs[0].Codes[0] = 12345
	require.Equal(t, Retryable, DefaultRules(PlatformDingTalk)[0].Outcome)
	require.Equal(t, []int{-1}, DefaultRules(PlatformDingTalk)[0].Codes)
	require.Nil(t, DefaultRules("slack"))
}

func TestNewOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
	}{
		{"nil client", WithHTTPClient(nil)},
		{"nil clock", WithClock(nil)},
		{"zero timeout", WithTimeout(0)},
		{"negative timeout", WithTimeout(-time.Second)},
		{"unknown platform", WithRules("slack", Rule{Codes: []int{1}, Outcome: Permanent})},
		{"empty rule", WithRules(PlatformPOPO, Rule{Outcome: Permanent})},
		{"rule without outcome", WithRules(PlatformPOPO, Rule{Codes: []int{1}})},
		{"rule for code 0", WithRules(PlatformPOPO, Rule{Codes: []int{0}, Outcome: Permanent})},
		{"rule with empty text", WithRules(PlatformPOPO, Rule{Contains: []string{""}, Outcome: Permanent})},
		{"rule with negative wait", WithRules(PlatformPOPO, Rule{Codes: []int{1}, Outcome: Retryable, RetryAfter: -1})},
		{"nil proxy", WithProxy(nil)},
		{"rule with outcome NotSent", WithRules(PlatformPOPO, Rule{Codes: []int{1}, Outcome: NotSent})},
		{"rule with unknown outcome", WithRules(PlatformPOPO, Rule{Codes: []int{1}, Outcome: NotSent + 1})},
		{"zero max retry-after", WithMaxRetryAfter(0)},
		{"negative max retry-after", WithMaxRetryAfter(-time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opt)
			require.ErrorIs(t, err, ErrInvalidOption)
		})
	}
	t.Run("proxy with own client", func(t *testing.T) {
		_, err := New(WithHTTPClient(&http.Client{}), WithProxy(http.ProxyFromEnvironment))
		require.ErrorIs(t, err, ErrInvalidOption)
	})
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassifyError(t *testing.T) {
	const token = "tok3nSECRETvalue"
	rawURL := "https://oapi.dingtalk.com/robot/send?access_token=" + token + "&timestamp=1&sign=abc"
	urlErr := func(err error) error { return &url.Error{Op: "Post", URL: rawURL, Err: err} }

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()

	tests := []struct {
		name   string
		ctx    context.Context
		err    error
		reason string
		is     []error
	}{
		{"parent cancelled", cancelled, urlErr(context.Canceled), "cancelled", []error{context.Canceled, ErrRequest}},
		{"parent deadline", expired, urlErr(context.DeadlineExceeded), "deadline exceeded", []error{context.DeadlineExceeded, ErrRequest}},
		{"request deadline", context.Background(), urlErr(context.DeadlineExceeded), "request timed out", []error{context.DeadlineExceeded, ErrRequest}},
		{"net timeout", context.Background(), urlErr(timeoutErr{}), "request timed out", []error{ErrRequest}},
		{"refused", context.Background(), urlErr(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), "connection refused", []error{syscall.ECONNREFUSED}},
		{"reset", context.Background(), urlErr(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), "connection reset", []error{syscall.ECONNRESET}},
		{"dns", context.Background(), urlErr(&net.DNSError{Err: "no such host", Name: "oapi.dingtalk.com", IsNotFound: true}), "DNS lookup failed", []error{ErrRequest}},
		{"other", context.Background(), urlErr(errors.New("EOF")), "transport error", []error{ErrRequest}},
		{"nil", context.Background(), nil, "request failed", []error{ErrRequest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ClassifyError(tt.ctx, tt.err)
			require.Equal(t, Retryable, res.Outcome)
			require.Equal(t, tt.reason, res.Reason)
			require.Zero(t, res.HTTPStatus)
			for _, target := range tt.is {
				require.ErrorIs(t, res.Err, target)
			}
			s := fmt.Sprintf("%+v", res)
			require.NotContains(t, s, token)
			require.NotContains(t, s, "access_token")
		})
	}
	// A shutdown is told apart from a timeout.
	require.NotErrorIs(t, ClassifyError(context.Background(), urlErr(context.DeadlineExceeded)).Err, context.Canceled)
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name string
		v    string
		want time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "120", 2 * time.Minute},
		{"zero", "0", 0},
		{"negative", "-5", 0},
		{"date", testNow.Add(time.Hour).Format(http.TimeFormat), time.Hour},
		{"date in the past", testNow.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"date far ahead saturates", "Fri, 31 Dec 9999 23:59:59 GMT", time.Duration(math.MaxInt64)},
		{"garbage", "soon", 0},
		{"fraction", "1.5", 1500 * time.Millisecond},
		{"huge saturates", "1000000000000", 9e9 * time.Second},
		{"beyond float range saturates", "1e400", 9e9 * time.Second},
		{"NaN", "NaN", 0},
		{"Inf", "Inf", 0},
		{"hex float", "0x1p4", 0},
		{"exponent only", "e5", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.v != "" {
				h.Set("Retry-After", tt.v)
			}
			require.Equal(t, tt.want, retryAfter(h, testNow))
		})
	}
}

func TestOutcomeString(t *testing.T) {
	for o, s := range map[Outcome]string{Success: "success", Retryable: "retryable", Throttled: "throttled", Permanent: "permanent",
		Wait: "wait", NotSent: "not_sent", 0: "unknown", NotSent + 1: "unknown"} {
		require.Equal(t, s, o.String())
		require.Equal(t, s != "unknown", o.Valid())
	}
}
