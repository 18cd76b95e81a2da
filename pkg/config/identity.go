package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"

	"github.com/botrelay/botrelay/pkg/delivery"
)

// identityHexLen is how many hex digits of the hash an identity keeps:
// 96 bits, far from any collision among a deployment's robots.
const identityHexLen = 24

// RobotIdentity returns the stable identity of the platform robot a
// webhook posts to: "<platform>-" and the first 24 hex digits of
// SHA-256(platform + "\x00" + credential), where the credential is
// the one [delivery.Platform.Credential] finds: DingTalk's access_token,
// POPO's hook id, Feishu's hook token, WeCom's key. The URL's host case, its other
// query parameters and trailing slashes do not change it, and nor does the
// robot's configured name, so a renamed robot keeps its rate window. The
// identity is safe to log and to use as a Redis key; the credential cannot
// be read back from it.
//
// The error says what is missing, never quoting the webhook.
func RobotIdentity(platform, webhook string) (string, error) {
	p, ok := delivery.LookupPlatform(platform)
	if !ok {
		return "", fmt.Errorf("platform %q is not supported", platform)
	}
	if _, err := url.Parse(webhook); err != nil {
		return "", errors.New("not a valid URL")
	}
	cred := p.Credential(webhook)
	if cred == "" {
		return "", fmt.Errorf("no %s (want %s)", p.CredentialIn, p.Webhook)
	}
	sum := sha256.Sum256([]byte(platform + "\x00" + cred))
	return platform + "-" + hex.EncodeToString(sum[:])[:identityHexLen], nil
}
