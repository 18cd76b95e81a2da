package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// credentials maps a platform to the function that extracts, from a
// robot's parsed webhook, the credential naming the robot on that platform.
// Two webhooks with the same platform and credential post to the same
// platform robot, which counts their messages in one window, whatever the
// rest of the URL says. Add a platform (Feishu: the last segment of
// /open-apis/bot/v2/hook/{token}; WeCom: the "key" query parameter) with
// one function here.
var credentials = map[string]func(u *url.URL) (string, error){
	DingTalk: dingTalkCredential,
	POPO:     popoCredential,
}

// dingTalkCredential returns the access_token query parameter of a
// DingTalk webhook (https://oapi.dingtalk.com/robot/send?access_token=…).
func dingTalkCredential(u *url.URL) (string, error) {
	tok := strings.TrimSpace(u.Query().Get("access_token"))
	if tok == "" {
		return "", errors.New("no access_token query parameter (want https://oapi.dingtalk.com/robot/send?access_token=…)")
	}
	return tok, nil
}

// popoCredential returns the hook id of a POPO webhook: the path segment
// after "hook" in /open-apis/robots/v1/hook/{id}, trailing slashes ignored.
func popoCredential(u *url.URL) (string, error) {
	return afterSegment(u, "hook",
		"no hook id in the path (want https://open.popo.netease.com/open-apis/robots/v1/hook/{id})")
}

// afterSegment returns the last non-empty path segment of u when the one
// before it is marker (case-insensitive), unescaped; otherwise an error
// with the text missing.
func afterSegment(u *url.URL, marker, missing string) (string, error) {
	var segs []string
	for _, s := range strings.Split(u.EscapedPath(), "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	n := len(segs)
	if n < 2 || !strings.EqualFold(segs[n-2], marker) {
		return "", errors.New(missing)
	}
	id, err := url.PathUnescape(segs[n-1])
	if err != nil || strings.TrimSpace(id) == "" {
		return "", errors.New(missing)
	}
	return id, nil
}

// identityHexLen is how many hex digits of the hash an identity keeps:
// 96 bits, far from any collision among a deployment's robots.
const identityHexLen = 24

// RobotIdentity returns the stable identity of the platform robot a
// webhook posts to: "<platform>-" and the first 24 hex digits of
// SHA-256(platform + "\x00" + credential), where the credential is
// DingTalk's access_token or POPO's hook id. The URL's host case, its other
// query parameters and trailing slashes do not change it, and nor does the
// robot's configured name, so a renamed robot keeps its rate window. The
// identity is safe to log and to use as a Redis key; the credential cannot
// be read back from it.
//
// The error says what is missing, never quoting the webhook.
func RobotIdentity(platform, webhook string) (string, error) {
	extract, ok := credentials[platform]
	if !ok {
		return "", fmt.Errorf("platform %q is not supported", platform)
	}
	u, err := url.Parse(webhook)
	if err != nil {
		return "", errors.New("not a valid URL")
	}
	cred, err := extract(u)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(platform + "\x00" + cred))
	return platform + "-" + hex.EncodeToString(sum[:])[:identityHexLen], nil
}
