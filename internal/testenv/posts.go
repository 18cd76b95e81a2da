package testenv

import (
	"fmt"
	"slices"

	"github.com/botrelay/botrelay/pkg/robotsim"
)

// Posts is a robot's request log ([robotsim.Sim.Requests]) read as what a
// sender posted: each message's first request the platform took (accepted,
// or for DingTalk dropped as a msgUuid duplicate of an accepted one), the
// later requests of a message it already had (repeats, whether the
// platform kept them, as POPO does, or dropped them by msgUuid), and the
// requests it refused or that an injected fault answered.
type Posts struct {
	// Firsts is the first request of each message the platform took, in
	// the order of first appearance.
	Firsts []robotsim.Request
	// Repeats is every later request of a message the platform already
	// took, in arrival order.
	Repeats []robotsim.Request
	// Refused is the requests answered with a nonzero errcode.
	Refused []robotsim.Request
	// Faulted is the requests answered by an injected fault.
	Faulted []robotsim.Request

	key func(robotsim.Request) string
}

// ByContent names a request's message by its content (for text messages
// with distinct contents).
func ByContent(r robotsim.Request) string { return r.Content }

// ByMsgUUID names a DingTalk request's message by its msgUuid (the
// envelope id).
func ByMsgUUID(r robotsim.Request) string { return r.MsgUUID }

// SplitPosts reads reqs, naming messages with key (nil: [ByContent]).
func SplitPosts(reqs []robotsim.Request, key func(robotsim.Request) string) Posts {
	if key == nil {
		key = ByContent
	}
	p := Posts{key: key}
	taken := map[string]bool{}
	for _, r := range reqs {
		switch r.Outcome {
		case robotsim.RequestAccepted, robotsim.RequestDuplicate:
			k := key(r)
			if taken[k] {
				p.Repeats = append(p.Repeats, r)
				continue
			}
			taken[k] = true
			p.Firsts = append(p.Firsts, r)
		case robotsim.RequestRefused:
			p.Refused = append(p.Refused, r)
		default:
			p.Faulted = append(p.Faulted, r)
		}
	}
	return p
}

// Keys returns the names of requests.
func (p Posts) Keys(reqs []robotsim.Request) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = p.key(r)
	}
	return out
}

// Has reports whether the platform took every message of want.
func (p Posts) Has(want []string) bool {
	got := p.Keys(p.Firsts)
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// Check returns an error unless the platform took exactly the messages of
// want (which must be distinct), in that order of first appearance, with
// at most maxRepeats repeats in all. Refused and faulted requests are left
// to the caller, who knows how many to expect.
func (p Posts) Check(want []string, maxRepeats int) error {
	seen := map[string]bool{}
	for _, w := range want {
		if seen[w] {
			return fmt.Errorf("the test's own list names %q twice", w)
		}
		seen[w] = true
	}
	if got := p.Keys(p.Firsts); !slices.Equal(got, want) {
		return fmt.Errorf("messages taken by the platform, in order of first appearance:\n got %q\nwant %q", got, want)
	}
	if len(p.Repeats) > maxRepeats {
		return fmt.Errorf("%d repeats of messages the platform already had (allowed %d): %q",
			len(p.Repeats), maxRepeats, p.Keys(p.Repeats))
	}
	return nil
}
