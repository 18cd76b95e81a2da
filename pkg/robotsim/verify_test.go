package robotsim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestVerifyVectors checks the simulator's own verification against
// signatures computed independently with OpenSSL 3.0 (the same vectors as
// pkg/signer's tests, written here as literals):
//
//	DingTalk: printf '%s\n%s' "$TS" "$SECRET" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64
//	POPO, Feishu: printf '' | openssl dgst -sha256 -mac HMAC \
//	  -macopt hexkey:$(printf '%s\n%s' "$TS" "$SECRET" | od -An -tx1 | tr -d ' \n') -binary | base64
func TestVerifyVectors(t *testing.T) {
	tests := []struct {
		name   string
		scheme signScheme
		ts     string
		now    time.Time
		sign   string
		want   string
	}{
		{"dingtalk", dingTalkScheme, "1700000000000", time.UnixMilli(1700000000000), "aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g=", ""},
		{"dingtalk +/", dingTalkScheme, "1700000000001", time.UnixMilli(1700000000000), "r4CWp/Dz+Ng0sbTjH1vB0Fr+uQ2fn831mssaN6/C05I=", ""},
		{"popo", popoScheme, "1700000000000", time.UnixMilli(1700000000000), "BLUsdlw78Oq131zS5xV55ss6oovX+oA1150e7X7HiLY=", ""},
		{"feishu", feishuScheme, "1700000000", time.Unix(1700000000, 0), "G7XpBpG8NgG02fJOAhX6FRAObIljmFoxVReo8I62pEk=", ""},
		{"feishu +", feishuScheme, "1700000001", time.Unix(1700000000, 0), "DrFUY07N8IXjFu5+aej04zYDnFPUdCpn0sDoCxeuLJU=", ""},
		{"feishu signed the DingTalk way", feishuScheme, "1700000000", time.Unix(1700000000, 0), "aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g=", DingTalkMsgSignNotMatch},
		{"feishu with a ms timestamp", feishuScheme, "1700000000000", time.Unix(1700000000, 0), "G7XpBpG8NgG02fJOAhX6FRAObIljmFoxVReo8I62pEk=", DingTalkMsgInvalidTimestamp},
		{"popo signature for dingtalk", dingTalkScheme, "1700000000000", time.UnixMilli(1700000000000), "BLUsdlw78Oq131zS5xV55ss6oovX+oA1150e7X7HiLY=", DingTalkMsgSignNotMatch},
		{"an hour and a second late", feishuScheme, "1700000000", time.Unix(1700003601, 0), "G7XpBpG8NgG02fJOAhX6FRAObIljmFoxVReo8I62pEk=", DingTalkMsgInvalidTimestamp},
		{"an hour late exactly", feishuScheme, "1700000000", time.Unix(1700003600, 0), "G7XpBpG8NgG02fJOAhX6FRAObIljmFoxVReo8I62pEk=", ""},
		{"no timestamp", popoScheme, "", time.UnixMilli(1700000000000), "x", DingTalkMsgInvalidTimestamp},
		{"no sign", popoScheme, "1700000000000", time.UnixMilli(1700000000000), "", DingTalkMsgSignNotMatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, verifyAt(tt.scheme, "SECtest", tt.ts, tt.sign, tt.now))
		})
	}
}
