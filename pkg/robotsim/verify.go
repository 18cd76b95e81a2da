package robotsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"time"
)

// MaxSkew is how far a signature's timestamp may be from the real clock:
// the platforms refuse anything more than one hour off.
const MaxSkew = time.Hour

// The simulator verifies signatures with its own code, written from the
// platforms' documentation, never with pkg/signer: it is the referee of
// the code it tests, and a signer bug must fail its tests.

// signScheme is one platform's signature: how the timestamp counts and
// what is keyed by what.
type signScheme int

const (
	// dingTalkScheme: ms timestamp; HMAC-SHA256 keyed by the secret over
	// timestamp + "\n" + secret.
	dingTalkScheme signScheme = iota
	// popoScheme: ms timestamp; keyed by timestamp + "\n" + secret over
	// an empty message.
	popoScheme
	// feishuScheme: seconds; keyed by timestamp + "\n" + secret over an
	// empty message.
	feishuScheme
)

// verify checks timestamp and sign under scheme against real time; it
// returns "" when they are good, else [DingTalkMsgInvalidTimestamp] or
// [DingTalkMsgSignNotMatch].
func verify(scheme signScheme, secret, timestamp, sign string) string {
	return verifyAt(scheme, secret, timestamp, sign, time.Now())
}

// verifyAt is verify against the clock reading now.
func verifyAt(scheme signScheme, secret, timestamp, sign string, now time.Time) string {
	switch {
	case timestamp == "":
		return DingTalkMsgInvalidTimestamp
	case sign == "":
		return DingTalkMsgSignNotMatch
	}
	n, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return DingTalkMsgInvalidTimestamp
	}
	at := time.UnixMilli(n)
	if scheme == feishuScheme {
		at = time.Unix(n, 0)
	}
	if skew := now.Sub(at); skew > MaxSkew || skew < -MaxSkew {
		return DingTalkMsgInvalidTimestamp
	}
	key, msg := secret, timestamp+"\n"+secret
	if scheme != dingTalkScheme {
		key, msg = timestamp+"\n"+secret, ""
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(sign)) {
		return DingTalkMsgSignNotMatch
	}
	return ""
}
