package delivery

import (
	"errors"
	"net"
	"net/url"
	"sort"
	"strings"
)

// Redacted replaces a secret in URLs, errors and messages.
const Redacted = "REDACTED"

// Redact returns webhook in a form safe to log: scheme, host and path, with
// no user info, query (DingTalk's access_token) or fragment, and with every
// path segment that may be a credential (POPO's hook id) replaced by
// [Redacted]. A segment is kept only when it is a short word of letters,
// '-', '_' or '.', or a version such as "v1", and does not follow a
// "hook" segment. An unparsable webhook gives [Redacted].
func Redact(webhook string) string {
	u, err := url.Parse(webhook)
	if err != nil || u.Host == "" {
		return Redacted
	}
	segs, _ := redactPath(u.EscapedPath())
	return u.Scheme + "://" + u.Host + segs
}

// redactPath returns the redacted path and the segments it removed.
func redactPath(p string) (string, []string) {
	if p == "" {
		return "", nil
	}
	parts := strings.Split(p, "/")
	var removed []string
	afterHook := false
	for i, s := range parts {
		if s == "" {
			continue
		}
		if afterHook || !safeSegment(s) {
			removed = append(removed, s)
			parts[i] = Redacted
		}
		switch strings.ToLower(s) {
		case "hook", "hooks", "webhook", "webhooks":
			afterHook = true
		default:
			afterHook = false
		}
	}
	return strings.Join(parts, "/"), removed
}

func safeSegment(s string) bool {
	if len(s) >= 2 && len(s) <= 4 && (s[0] == 'v' || s[0] == 'V') {
		digits := true
		for _, c := range s[1:] {
			digits = digits && c >= '0' && c <= '9'
		}
		if digits {
			return true
		}
	}
	if len(s) > 16 {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// redactURLError replaces the URL of a *url.Error at the top of err with
// its [Redact] form.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: Redact(ue.URL), Err: ue.Err}
	}
	return err
}

// scrubber removes one robot's credentials from text: the secret, the
// webhook itself, its query values, user info and the path segments
// [Redact] removes, raw and escaped.
type scrubber struct {
	secrets []string
}

// minQueryValue is the shortest query value taken for a credential; shorter
// ones ("1", "zh") would garble messages and protect nothing.
const minQueryValue = 6

func newScrubber(robot Robot) scrubber {
	var s []string
	add := func(v string, min int) {
		if len(v) < min {
			return
		}
		s = append(s, v, url.QueryEscape(v), url.PathEscape(v))
	}
	add(robot.Secret, 1)
	add(robot.Webhook, 1)
	if p := lookup(robot.Platform); p != nil {
		add(p.Credential(robot.Webhook), 1)
	}
	if u, err := url.Parse(robot.Webhook); err == nil {
		for _, vs := range u.Query() {
			for _, v := range vs {
				add(v, minQueryValue)
			}
		}
		if u.User != nil {
			add(u.User.Username(), 1)
			if pw, ok := u.User.Password(); ok {
				add(pw, 1)
			}
		}
		_, removed := redactPath(u.EscapedPath())
		for _, r := range removed {
			add(r, 1)
			if un, err := url.PathUnescape(r); err == nil {
				add(un, 1)
			}
		}
	}
	// Longest first, so that a secret containing another is removed whole.
	sort.Slice(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
	return scrubber{secrets: s}
}

func (sc scrubber) string(str string) string {
	for _, v := range sc.secrets {
		if strings.Contains(str, v) {
			str = strings.ReplaceAll(str, v, Redacted)
		}
	}
	// A replacement can make a new occurrence (secret "DR", text "DDRR"
	// gives "DREDACTEDR"): then nothing of the text is shown.
	if sc.holdsSecret(str) {
		if sc.holdsSecret(Redacted) {
			return ""
		}
		return Redacted
	}
	return str
}

func (sc scrubber) holdsSecret(str string) bool {
	for _, v := range sc.secrets {
		if strings.Contains(str, v) {
			return true
		}
	}
	return false
}

// err returns err unchanged when its text holds no credential, else a
// [redactedError] with the text scrubbed.
func (sc scrubber) err(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := sc.string(msg)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, orig: err}
}

// result scrubs every text field of r.
func (sc scrubber) result(r Result) Result {
	r.ErrMsg = sc.string(r.ErrMsg)
	r.Reason = sc.string(r.Reason)
	r.MessageID = sc.string(r.MessageID)
	r.Err = sc.err(r.Err)
	return r
}

// redactedError shows a scrubbed message. It matches what the original
// matched with [errors.Is] and keeps its Timeout, but does not unwrap to
// it: the original's text holds a credential.
type redactedError struct {
	msg  string
	orig error
}

func (e *redactedError) Error() string { return e.msg }

// Is reports whether the original error matches target.
func (e *redactedError) Is(target error) bool { return errors.Is(e.orig, target) }

// Timeout reports whether the original error is a timeout.
func (e *redactedError) Timeout() bool {
	var ne net.Error
	return errors.As(e.orig, &ne) && ne.Timeout()
}

// Temporary completes [net.Error]; it reports Timeout.
func (e *redactedError) Temporary() bool { return e.Timeout() }
