package delivery

import (
	"fmt"
	"strings"

	"github.com/botrelay/botrelay/pkg/envelope"
)

// CheckKeywords reports whether env, rendered for robot's platform, holds
// at least one of robot.Keywords (exact, case-sensitive substring, as the
// platforms match). It returns nil when the robot has no keywords, an error
// matching [ErrMissingKeyword] when none is present, and one matching
// [ErrInvalidMessage] or [ErrInvalidRobot] when env cannot be rendered.
//
// The platforms refuse such a message, and the refusal would still spend
// the robot's rate budget: the worker calls CheckKeywords before reserving
// a slot and dead-letters on error. [Deliverer.Deliver] refuses it too.
//
// For DingTalk the content (mentions included), titles and texts count,
// not the URLs, nor an actionCard's singleTitle or button titles (the
// platform may not search them: a keyword only there is refused here);
// for POPO the whole message text; for Feishu the text, or a card's
// title and markdown (not its buttons); WeCom has no keyword security
// (a robot's keywords then filter its plain text).
func CheckKeywords(robot Robot, env *envelope.Envelope) error {
	if !hasKeywords(robot.Keywords) {
		return nil
	}
	text, err := keywordText(robot.Platform, env)
	if err != nil {
		return err
	}
	for _, k := range robot.Keywords {
		if k != "" && strings.Contains(text, k) {
			return nil
		}
	}
	return fmt.Errorf("%w (robot %q)", ErrMissingKeyword, robot.Name)
}

func hasKeywords(ks []string) bool {
	for _, k := range ks {
		if k != "" {
			return true
		}
	}
	return false
}

func keywordText(platform string, env *envelope.Envelope) (string, error) {
	if env == nil {
		return "", fmt.Errorf("%w: nil envelope", ErrInvalidMessage)
	}
	p := lookup(platform)
	if p == nil {
		return "", fmt.Errorf("%w: unknown platform %q", ErrInvalidRobot, platform)
	}
	return p.keywordText(env)
}
