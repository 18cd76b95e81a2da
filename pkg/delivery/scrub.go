package delivery

// Scrub returns s with every credential of robot (its secret, its webhook
// and the tokens in it, escaped or not) replaced by [Redacted]: for text
// that may quote them, such as a panic's value or stack.
func Scrub(robot Robot, s string) string { return newScrubber(robot).string(s) }
