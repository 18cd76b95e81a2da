package signer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// MaxSkew is how far a signature's timestamp may be from the verifier's
// clock: the platforms refuse anything more than one hour off.
const MaxSkew = time.Hour

// Errors returned by the Verify functions; match them with [errors.Is].
var (
	ErrMalformedTimestamp = errors.New("signer: malformed timestamp")
	ErrTimestampSkew      = errors.New("signer: timestamp outside the accepted window")
	ErrSignatureMismatch  = errors.New("signer: signature does not match")
	ErrMissingSignature   = errors.New("signer: missing timestamp or signature")
)

// ErrInvalidWebhook is returned by [SignDingTalkURL] for a webhook that is
// not an absolute http or https URL with a well-formed query. Its message
// never contains the webhook.
var ErrInvalidWebhook = errors.New("signer: invalid webhook")

// Timestamp returns t as the platforms' millisecond timestamp string.
func Timestamp(t time.Time) string {
	return strconv.FormatInt(t.UnixMilli(), 10)
}

func hmacBase64(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// DingTalk returns the timestamp and the (not URL-encoded) base64 signature
// for a DingTalk custom robot at time now.
func DingTalk(secret string, now time.Time) (timestamp, sign string) {
	timestamp = Timestamp(now)
	return timestamp, DingTalkSign(secret, timestamp)
}

// DingTalkSign computes base64(HMAC-SHA256(key=secret, msg=timestamp+"\n"+secret)).
func DingTalkSign(secret, timestamp string) string {
	return hmacBase64(secret, timestamp+"\n"+secret)
}

// SignDingTalkURL returns webhook with "timestamp" and "sign" query
// parameters for time now. Existing parameters (access_token) are kept and
// an earlier timestamp and sign are replaced, so a URL may be re-signed at
// every attempt. Errors match [ErrInvalidWebhook] and never contain the
// webhook, which holds the access token.
func SignDingTalkURL(webhook, secret string, now time.Time) (string, error) {
	// Errors from net/url quote the URL, token included: never wrap them.
	u, err := url.Parse(webhook)
	if err != nil {
		return "", fmt.Errorf("%w: not a valid URL", ErrInvalidWebhook)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("%w: not an absolute http or https URL", ErrInvalidWebhook)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", fmt.Errorf("%w: malformed query string", ErrInvalidWebhook)
	}
	ts, sign := DingTalk(secret, now)
	q.Set("timestamp", ts)
	q.Set("sign", sign)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// POPO returns the timestamp and signData for a POPO custom robot at time now.
func POPO(secret string, now time.Time) (timestamp, signData string) {
	timestamp = Timestamp(now)
	return timestamp, POPOSign(secret, timestamp)
}

// POPOSign computes base64(HMAC-SHA256(key=timestamp+"\n"+secret, msg="")).
func POPOSign(secret, timestamp string) string {
	return hmacBase64(timestamp+"\n"+secret, "")
}

// FeishuTimestamp returns t as Feishu's timestamp string: seconds, not
// milliseconds.
func FeishuTimestamp(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10)
}

// Feishu returns the timestamp (seconds) and the base64 sign for a
// Feishu/Lark custom bot at time now; both go into the JSON body, as the
// top-level fields "timestamp" and "sign".
func Feishu(secret string, now time.Time) (timestamp, sign string) {
	timestamp = FeishuTimestamp(now)
	return timestamp, FeishuSign(secret, timestamp)
}

// FeishuSign computes base64(HMAC-SHA256(key=timestamp+"\n"+secret, msg="")),
// timestamp in seconds. It differs from DingTalk's in three ways (seconds,
// key and message swapped, sent in the body rather than the URL): senders
// that sign Feishu requests DingTalk's way get 19021.
func FeishuSign(secret, timestamp string) string {
	return hmacBase64(timestamp+"\n"+secret, "")
}

// VerifyDingTalk checks a DingTalk-style signature (outgoing robot requests
// as the simulator sees them, and enterprise-robot callbacks): timestamp must
// be within [MaxSkew] of now and sign must equal [DingTalkSign], compared in
// constant time.
func VerifyDingTalk(secret, timestamp, sign string, now time.Time) error {
	if err := checkTimestamp(timestamp, sign, now); err != nil {
		return err
	}
	return compare(DingTalkSign(secret, timestamp), sign)
}

// VerifyDingTalkCallback verifies the "timestamp" and "sign" headers of an
// inbound DingTalk enterprise-robot callback with the app secret.
func VerifyDingTalkCallback(appSecret, timestamp, sign string, now time.Time) error {
	return VerifyDingTalk(appSecret, timestamp, sign, now)
}

// VerifyPOPO checks a POPO signature the same way as [VerifyDingTalk].
func VerifyPOPO(secret, timestamp, signData string, now time.Time) error {
	if err := checkTimestamp(timestamp, signData, now); err != nil {
		return err
	}
	return compare(POPOSign(secret, timestamp), signData)
}

func checkTimestamp(timestamp, sign string, now time.Time) error {
	if timestamp == "" || sign == "" {
		return ErrMissingSignature
	}
	ms, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrMalformedTimestamp, timestamp)
	}
	skew := now.Sub(time.UnixMilli(ms))
	if skew > MaxSkew || skew < -MaxSkew {
		return fmt.Errorf("%w: %s off", ErrTimestampSkew, skew.Round(time.Second))
	}
	return nil
}

func compare(want, got string) error {
	if !hmac.Equal([]byte(want), []byte(got)) {
		return ErrSignatureMismatch
	}
	return nil
}
