package config

import (
	"fmt"
	"strings"
	"time"
)

// MaxDigestItems bounds a digest's max_items: a digest robot's consumer
// hands the worker at most this many waiting messages at once.
const MaxDigestItems = 1000

// checkDigest returns the problems of rb's digest policy, each prefixed
// with at ("robots[0] \"alerts\""); none when rb has no digest.
func checkDigest(at string, rb *Robot) []error {
	d := rb.Digest
	if d == nil {
		return nil
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(at+": digest."+format, a...)) }
	if d.After <= 0 {
		bad("after: must be positive (the longest a message waits for its own post), got %s", time.Duration(d.After))
	}
	if d.MaxItems < 0 || d.MaxItems > MaxDigestItems {
		bad("max_items: must be 0 (as many as fit) to %d, got %d", MaxDigestItems, d.MaxItems)
	}
	if d.MaxItems == 1 {
		bad("max_items: 1 folds nothing; use at least 2, or 0 for as many as fit")
	}
	var kws []string
	for _, k := range rb.Keywords {
		if strings.TrimSpace(k) != "" {
			kws = append(kws, k)
		}
	}
	if len(kws) > 0 && !containsAny(d.Title, kws) {
		if d.Title == "" {
			bad("title: required when the robot has keywords (the platform refuses a digest without one of %q)", kws)
		} else {
			bad("title: %q carries none of the robot's keywords %q (the platform would refuse every digest)", d.Title, kws)
		}
	}
	return errs
}

func containsAny(s string, subs []string) bool {
	for _, k := range subs {
		if strings.Contains(s, k) {
			return true
		}
	}
	return false
}
