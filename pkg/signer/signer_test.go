package signer

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const longSecret = "SEC5f1c3e0a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f" // 69 bytes: longer than the HMAC block

// DingTalk vectors, computed independently with OpenSSL 3.0:
//
//	printf '%s\n%s' "$TS" "$SECRET" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64
var dingTalkVectors = []struct {
	secret, timestamp, sign string
}{
	{"SECtest", "1700000000000", "aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g="},
	{"SECtest", "1700000000001", "r4CWp/Dz+Ng0sbTjH1vB0Fr+uQ2fn831mssaN6/C05I="}, // has '+' and '/'
	{"SEC0123456789abcdef", "1700000000000", "TSZbRFUuvaSQaRKUpF970OPCb2/LcQAP3wOvwZIzBZk="},
	{longSecret, "1714564800000", "35y/1GIk2NALfPaawLh3Pbz2rqUYf+BMQm608bk/rdo="},
}

// POPO vectors: the key is "<ts>\n<secret>" and the message empty. The
// newline goes into the key through -macopt hexkey:
//
//	printf '' | openssl dgst -sha256 -mac HMAC \
//	  -macopt hexkey:$(printf '%s\n%s' "$TS" "$SECRET" | od -An -tx1 | tr -d ' \n') -binary | base64
//
// (-macopt "key:$TS<literal newline>$SECRET" gives the same results.)
var popoVectors = []struct {
	secret, timestamp, sign string
}{
	{"SECtest", "1700000000000", "BLUsdlw78Oq131zS5xV55ss6oovX+oA1150e7X7HiLY="},
	{"SECtest", "1700000000001", "zFWO8IZtYb/TUtT7hqlBitsaiYrx9zf3dnCKFWRtdo4="},
	{"SEC0123456789abcdef", "1700000000000", "391tiQVeqLh3cHyEaMHSOhZAhRqCTsH+Gb3gi5FNxr8="},
	{longSecret, "1714564800000", "IAGzvwaCjEVuxbt5qDSdruHeYr5p8SGgNp67aYsHKww="},
}

// Feishu vectors: the key is "<ts>\n<secret>" with ts in seconds, the
// message empty, computed independently with OpenSSL 3.0 (and checked
// with python3's hmac module):
//
//	printf '' | openssl dgst -sha256 -mac HMAC \
//	  -macopt hexkey:$(printf '%s\n%s' "$TS" "$SECRET" | od -An -tx1 | tr -d ' \n') -binary | base64
var feishuVectors = []struct {
	secret, timestamp, sign string
}{
	{"SECtest", "1700000000", "G7XpBpG8NgG02fJOAhX6FRAObIljmFoxVReo8I62pEk="},
	{"SECtest", "1700000001", "DrFUY07N8IXjFu5+aej04zYDnFPUdCpn0sDoCxeuLJU="},
	{"SEC0123456789abcdef", "1700000000", "PiO7POLlSx/DM2qf8Dy/XCWeJK3exVnevp5G99LEN2M="},
	{longSecret, "1714564800", "jAhc+KvHF/GjrAIPbveZeXFJT1KfcQWnCqW1UMWem6c="},
}

func TestFeishuVectors(t *testing.T) {
	for _, v := range feishuVectors {
		t.Run(v.timestamp+"/"+v.secret[:7], func(t *testing.T) {
			require.Equal(t, v.sign, FeishuSign(v.secret, v.timestamp))
			sec, err := strconv.ParseInt(v.timestamp, 10, 64)
			require.NoError(t, err)
			ts, sign := Feishu(v.secret, time.Unix(sec, 999_000_000)) // sub-second truncated
			require.Equal(t, v.timestamp, ts)
			require.Equal(t, v.sign, sign)
			require.NotEqual(t, DingTalkSign(v.secret, v.timestamp), sign, "not DingTalk's scheme")
		})
	}
}

func ms(v int64) time.Time { return time.UnixMilli(v) }

func TestTimestamp(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{"epoch ms", ms(1700000000000), "1700000000000"},
		{"sub-ms truncated", ms(1700000000000).Add(999 * time.Microsecond), "1700000000000"},
		{"zone does not matter", time.Date(2024, 5, 1, 20, 0, 0, 0, time.FixedZone("CST", 8*3600)), "1714564800000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Timestamp(tt.t))
		})
	}
}

func TestDingTalkVectors(t *testing.T) {
	for _, v := range dingTalkVectors {
		t.Run(v.timestamp+"/"+v.secret[:7], func(t *testing.T) {
			require.Equal(t, v.sign, DingTalkSign(v.secret, v.timestamp))
			ts, sign := DingTalk(v.secret, parseMS(t, v.timestamp))
			require.Equal(t, v.timestamp, ts)
			require.Equal(t, v.sign, sign)
		})
	}
}

func TestPOPOVectors(t *testing.T) {
	for _, v := range popoVectors {
		t.Run(v.timestamp+"/"+v.secret[:7], func(t *testing.T) {
			require.Equal(t, v.sign, POPOSign(v.secret, v.timestamp))
			ts, sign := POPO(v.secret, parseMS(t, v.timestamp))
			require.Equal(t, v.timestamp, ts)
			require.Equal(t, v.sign, sign)
		})
	}
}

func TestDingTalkAndPOPODiffer(t *testing.T) {
	require.NotEqual(t, DingTalkSign("SECtest", "1700000000000"), POPOSign("SECtest", "1700000000000"))
}

func parseMS(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return time.UnixMilli(v)
}

func TestSignDingTalkURL(t *testing.T) {
	const token = "abc123tokenSECRETISH"
	now := ms(1700000000001) // sign "r4CWp/Dz+Ng0sbTjH1vB0Fr+uQ2fn831mssaN6/C05I="
	tests := []struct {
		name    string
		webhook string
		want    string
	}{
		{"plain",
			"https://oapi.dingtalk.com/robot/send?access_token=" + token,
			"https://oapi.dingtalk.com/robot/send?access_token=" + token +
				"&sign=r4CWp%2FDz%2BNg0sbTjH1vB0Fr%2BuQ2fn831mssaN6%2FC05I%3D&timestamp=1700000000001"},
		{"re-signed replaces old values",
			"https://oapi.dingtalk.com/robot/send?access_token=" + token + "&timestamp=1&sign=old",
			"https://oapi.dingtalk.com/robot/send?access_token=" + token +
				"&sign=r4CWp%2FDz%2BNg0sbTjH1vB0Fr%2BuQ2fn831mssaN6%2FC05I%3D&timestamp=1700000000001"},
		{"http and port kept",
			"http://127.0.0.1:8080/robot/send?access_token=" + token,
			"http://127.0.0.1:8080/robot/send?access_token=" + token +
				"&sign=r4CWp%2FDz%2BNg0sbTjH1vB0Fr%2BuQ2fn831mssaN6%2FC05I%3D&timestamp=1700000000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SignDingTalkURL(tt.webhook, "SECtest", now)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)

			// What the platform decodes is the base64 signature and the token.
			u, err := url.Parse(got)
			require.NoError(t, err)
			q := u.Query()
			require.Equal(t, token, q.Get("access_token"))
			require.Equal(t, "1700000000001", q.Get("timestamp"))
			require.Equal(t, "r4CWp/Dz+Ng0sbTjH1vB0Fr+uQ2fn831mssaN6/C05I=", q.Get("sign"))
			require.NoError(t, VerifyDingTalk("SECtest", q.Get("timestamp"), q.Get("sign"), now))
			require.NotContains(t, got, "+", "a raw '+' would be read as a space")
		})
	}
}

func TestSignDingTalkURLInvalid(t *testing.T) {
	const token = "tok3nVALUEmustNotLeak"
	tests := []struct {
		name    string
		webhook string
	}{
		{"control character", "https://oapi.dingtalk.com/robot/send?access_token=" + token + "\x7f"},
		{"bad escape in host", "https://oapi%zz.dingtalk.com/robot/send?access_token=" + token},
		{"missing scheme", "oapi.dingtalk.com/robot/send?access_token=" + token},
		{"other scheme", "ftp://oapi.dingtalk.com/robot/send?access_token=" + token},
		{"no host", "https:///robot/send?access_token=" + token},
		{"malformed query", "https://oapi.dingtalk.com/robot/send?access_token=" + token + "%zz"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SignDingTalkURL(tt.webhook, "SECtest", ms(1700000000000))
			require.Empty(t, got)
			require.ErrorIs(t, err, ErrInvalidWebhook)
			require.NotContains(t, err.Error(), "tok3n")
			require.NotContains(t, err.Error(), "dingtalk")
			require.NotContains(t, err.Error(), "SECtest")
		})
	}
}

func TestVerify(t *testing.T) {
	const secret = "SECtest"
	const ts = "1700000000000"
	signedAt := ms(1700000000000)
	verifiers := []struct {
		name   string
		verify func(secret, timestamp, sign string, now time.Time) error
		sign   string
	}{
		{"DingTalk", VerifyDingTalk, "aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g="},
		{"DingTalkCallback", VerifyDingTalkCallback, "aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g="},
		{"POPO", VerifyPOPO, "BLUsdlw78Oq131zS5xV55ss6oovX+oA1150e7X7HiLY="},
	}
	for _, v := range verifiers {
		tests := []struct {
			name      string
			secret    string
			timestamp string
			sign      string
			now       time.Time
			want      error
		}{
			{"ok", secret, ts, v.sign, signedAt, nil},
			{"59 minutes old", secret, ts, v.sign, signedAt.Add(59 * time.Minute), nil},
			{"59 minutes ahead", secret, ts, v.sign, signedAt.Add(-59 * time.Minute), nil},
			{"exactly one hour old", secret, ts, v.sign, signedAt.Add(time.Hour), nil},
			{"61 minutes old", secret, ts, v.sign, signedAt.Add(61 * time.Minute), ErrTimestampSkew},
			{"61 minutes in the future", secret, ts, v.sign, signedAt.Add(-61 * time.Minute), ErrTimestampSkew},
			{"one ms past the hour", secret, ts, v.sign, signedAt.Add(time.Hour + time.Millisecond), ErrTimestampSkew},
			{"wrong secret", "SECother", ts, v.sign, signedAt, ErrSignatureMismatch},
			{"other timestamp", secret, "1700000000001", v.sign, signedAt, ErrSignatureMismatch},
			{"tampered sign", secret, ts, strings.Replace(v.sign, "=", "A", 1), signedAt, ErrSignatureMismatch},
			{"url-encoded sign is not decoded", secret, ts, url.QueryEscape(v.sign), signedAt, ErrSignatureMismatch},
			{"malformed timestamp", secret, "17e11", v.sign, signedAt, ErrMalformedTimestamp},
			{"seconds with fraction", secret, "1700000000.0", v.sign, signedAt, ErrMalformedTimestamp},
			{"missing timestamp", secret, "", v.sign, signedAt, ErrMissingSignature},
			{"missing sign", secret, ts, "", signedAt, ErrMissingSignature},
		}
		for _, tt := range tests {
			t.Run(v.name+"/"+tt.name, func(t *testing.T) {
				err := v.verify(tt.secret, tt.timestamp, tt.sign, tt.now)
				if tt.want == nil {
					require.NoError(t, err)
					return
				}
				require.ErrorIs(t, err, tt.want)
				require.NotContains(t, err.Error(), tt.secret)
			})
		}
	}
}

func TestVerifyDingTalkRejectsPOPOSignature(t *testing.T) {
	now := ms(1700000000000)
	ts, popo := POPO("SECtest", now)
	require.ErrorIs(t, VerifyDingTalk("SECtest", ts, popo, now), ErrSignatureMismatch)
	ts, ding := DingTalk("SECtest", now)
	require.ErrorIs(t, VerifyPOPO("SECtest", ts, ding, now), ErrSignatureMismatch)
}

func TestSkewMessage(t *testing.T) {
	err := VerifyPOPO("SECtest", "1700000000000", "x", ms(1700000000000).Add(61*time.Minute))
	require.EqualError(t, err, "signer: timestamp outside the accepted window: 1h1m0s off")
}
