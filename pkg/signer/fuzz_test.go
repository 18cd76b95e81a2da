package signer_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/botrelay/botrelay/pkg/signer"
)

// verifyErrors are the only errors the Verify functions return.
var verifyErrors = []error{signer.ErrMissingSignature, signer.ErrMalformedTimestamp, signer.ErrTimestampSkew, signer.ErrSignatureMismatch}

// checkVerify asserts the invariants of one verification of (timestamp,
// sign) with secret at now: the error is nil or matches exactly one of
// verifyErrors; nil only for the exact signature of a timestamp within
// MaxSkew; the error text never holds the secret (of 4 bytes or more:
// a shorter one is in any text) or the expected signature.
func checkVerify(t *testing.T, err error, secret, timestamp, sign, want string, now time.Time) {
	t.Helper()
	if err == nil {
		if sign != want {
			t.Fatalf("accepted a signature that is not the expected one: %q", sign)
		}
		return
	}
	n := 0
	for _, e := range verifyErrors {
		if errors.Is(err, e) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error matches %d of the sentinels: %v", n, err)
	}
	msg := err.Error()
	// The malformed timestamp is quoted in the error: a secret that is
	// part of what was sent is no leak.
	echoed := strconv.Quote(timestamp)
	if len(secret) >= 4 && strings.Contains(msg, secret) && !strings.Contains(echoed, secret) {
		t.Fatalf("error holds the secret: %v", err)
	}
	if want != "" && strings.Contains(msg, want) && !strings.Contains(echoed, want) {
		t.Fatalf("error holds the expected signature: %v", err)
	}
}

// FuzzVerifyDingTalkCallback: the headers of an inbound callback, any
// bytes, never panic the verifier and get a precise answer; a signature
// made with the secret for a timestamp within the hour always verifies.
func FuzzVerifyDingTalkCallback(f *testing.F) {
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	ts, sign := signer.DingTalk("SECappsecret", now)
	f.Add("SECappsecret", ts, sign, now.UnixMilli())
	f.Add("SECappsecret", ts, sign, now.Add(2*time.Hour).UnixMilli())
	f.Add("SECappsecret", "", "", now.UnixMilli())
	f.Add("SECappsecret", "17e11", sign, now.UnixMilli())
	f.Add("SECappsecret", "+"+ts, sign, now.UnixMilli())
	f.Add("SECappsecret", "9223372036854775807", sign, now.UnixMilli())
	f.Add("SECappsecret", "-9223372036854775808", sign, int64(-1)<<62)
	f.Add("", ts, "not base64 ☃", int64(0))
	f.Fuzz(func(t *testing.T, secret, timestamp, sign string, nowMs int64) {
		at := time.UnixMilli(nowMs)
		err := signer.VerifyDingTalkCallback(secret, timestamp, sign, at)
		checkVerify(t, err, secret, timestamp, sign, signer.DingTalkSign(secret, timestamp), at)
		if err == nil {
			requireWithinSkew(t, timestamp, at)
		}
		// A fresh signature of the secret always verifies.
		fts, fsign := signer.DingTalk(secret, at)
		if err := signer.VerifyDingTalkCallback(secret, fts, fsign, at); err != nil {
			t.Fatalf("a fresh signature does not verify: %v", err)
		}
	})
}

// FuzzVerifyPOPO: the same for POPO's signData.
func FuzzVerifyPOPO(f *testing.F) {
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	ts, sign := signer.POPO("popo-secret", now)
	f.Add("popo-secret", ts, sign, now.UnixMilli())
	f.Add("popo-secret", ts, sign+"=", now.UnixMilli())
	f.Add("popo-secret", ts, sign, now.Add(-61*time.Minute).UnixMilli())
	f.Add("", "", sign, int64(0))
	f.Add("popo-secret", "1.7e12", sign, now.UnixMilli())
	f.Fuzz(func(t *testing.T, secret, timestamp, sign string, nowMs int64) {
		at := time.UnixMilli(nowMs)
		err := signer.VerifyPOPO(secret, timestamp, sign, at)
		checkVerify(t, err, secret, timestamp, sign, signer.POPOSign(secret, timestamp), at)
		if err == nil {
			requireWithinSkew(t, timestamp, at)
		}
		fts, fsign := signer.POPO(secret, at)
		if err := signer.VerifyPOPO(secret, fts, fsign, at); err != nil {
			t.Fatalf("a fresh signature does not verify: %v", err)
		}
	})
}

// requireWithinSkew fails unless timestamp is a millisecond time within
// MaxSkew of now.
func requireWithinSkew(t *testing.T, timestamp string, now time.Time) {
	t.Helper()
	ms, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		t.Fatalf("accepted a malformed timestamp %q", timestamp)
	}
	if skew := now.Sub(time.UnixMilli(ms)); skew > signer.MaxSkew || skew < -signer.MaxSkew {
		t.Fatalf("accepted a timestamp %s off", skew)
	}
}
