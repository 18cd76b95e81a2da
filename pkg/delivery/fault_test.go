package delivery

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Every platform's real answers, classified by the built-in rules, then
// told apart as the robot's fault or the message's.
func TestResultFault(t *testing.T) {
	d, err := New()
	require.NoError(t, err)
	tests := []struct {
		name     string
		platform string
		status   int // 0: 200
		body     string
		want     Fault
	}{
		{"dingtalk ok", PlatformDingTalk, 0, `{"errcode":0,"errmsg":"ok"}`, FaultNone},
		{"dingtalk throttled", PlatformDingTalk, 0, `{"errcode":130101,"errmsg":"send too fast"}`, FaultNone},
		{"dingtalk busy", PlatformDingTalk, 0, `{"errcode":-1,"errmsg":"system busy"}`, FaultNone},
		{"dingtalk over limit", PlatformDingTalk, 0, `{"errcode":90030,"errmsg":"webhook over limit"}`, FaultNone},
		{"dingtalk token not found", PlatformDingTalk, 0, `{"errcode":300001,"errmsg":"token is not exist"}`, FaultRobot},
		{"dingtalk token 400101", PlatformDingTalk, 0, `{"errcode":400101,"errmsg":"access_token不存在"}`, FaultRobot},
		{"dingtalk robot disabled", PlatformDingTalk, 0, `{"errcode":400102,"errmsg":"robot is disabled"}`, FaultRobot},
		{"dingtalk robot gone", PlatformDingTalk, 0, `{"errcode":400106,"errmsg":"robot does not exist"}`, FaultRobot},
		{"dingtalk group disbanded", PlatformDingTalk, 0, `{"errcode":400013,"errmsg":"group disbanded"}`, FaultRobot},
		{"dingtalk sign not match", PlatformDingTalk, 0, `{"errcode":310000,"errmsg":"sign not match"}`, FaultRobot},
		{"dingtalk ip not whitelisted", PlatformDingTalk, 0, `{"errcode":310000,"errmsg":"ip 1.2.3.4 not in whitelist"}`, FaultRobot},
		{"dingtalk keywords", PlatformDingTalk, 0, `{"errcode":310000,"errmsg":"keywords not in content"}`, FaultMessage},
		{"dingtalk invalid timestamp", PlatformDingTalk, 0, `{"errcode":310000,"errmsg":"invalid timestamp"}`, FaultMessage},
		{"dingtalk security check (unspecified)", PlatformDingTalk, 0, `{"errcode":310000,"errmsg":"other"}`, FaultMessage},
		{"dingtalk too long", PlatformDingTalk, 0, `{"errcode":460101,"errmsg":"message too long, exceed 20000 bytes"}`, FaultMessage},
		{"dingtalk content rejected", PlatformDingTalk, 0, `{"errcode":430102,"errmsg":"unsafe text"}`, FaultMessage},
		{"dingtalk unsupported msgtype", PlatformDingTalk, 0, `{"errcode":400105,"errmsg":"unsupported msgtype"}`, FaultMessage},
		{"dingtalk unknown errcode", PlatformDingTalk, 0, `{"errcode":123456,"errmsg":"?"}`, FaultMessage},
		{"http 404", PlatformDingTalk, 404, `not found`, FaultRobot},
		{"http 403", PlatformDingTalk, 403, `forbidden`, FaultRobot},
		{"http 400", PlatformDingTalk, 400, `bad request`, FaultMessage},
		{"http 413", PlatformDingTalk, 413, `too large`, FaultMessage},
		{"popo robot not found", PlatformPOPO, 0, `{"errcode":10001,"errmsg":"robot not found"}`, FaultRobot},
		{"popo signature", PlatformPOPO, 0, `{"errcode":10003,"errmsg":"sign not match"}`, FaultRobot},
		{"popo keywords", PlatformPOPO, 0, `{"errcode":10004,"errmsg":"keywords not in content"}`, FaultMessage},
		{"popo bad request", PlatformPOPO, 0, `{"errcode":10002,"errmsg":"bad request"}`, FaultMessage},
		{"feishu token invalid", PlatformFeishu, 0, `{"code":19001,"msg":"param invalid: incoming webhook access token invalid"}`, FaultRobot},
		{"feishu sign", PlatformFeishu, 0, `{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}`, FaultRobot},
		{"feishu ip", PlatformFeishu, 0, `{"code":19022,"msg":"ip not allowed"}`, FaultRobot},
		{"feishu keywords", PlatformFeishu, 0, `{"code":19024,"msg":"Key Words Not Found"}`, FaultMessage},
		{"wecom invalid url", PlatformWeCom, 0, `{"errcode":93000,"errmsg":"invalid webhook url"}`, FaultRobot},
		{"wecom too long", PlatformWeCom, 0, `{"errcode":40058,"errmsg":"markdown.content exceed max length 4096"}`, FaultMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := tt.status
			if status == 0 {
				status = 200
			}
			res := d.Classify(tt.platform, Response{StatusCode: status, Body: []byte(tt.body)})
			require.Equal(t, tt.want, res.Fault(), "outcome %s, reason %q", res.Outcome, res.Reason)
		})
	}
	require.Equal(t, FaultNone, ClassifyError(t.Context(), errTest).Fault(), "a transport error is nobody's permanent fault")
}

var errTest = errTestType{}

type errTestType struct{}

func (errTestType) Error() string { return "connection refused" }
