package delivery

import "strconv"

// Fault says whose a [Permanent] result is: the robot's own (its token,
// its signing secret, its state on the platform, its IP whitelist) or the
// message's (its content, its size, its type). A robot pool sends a
// message that failed for its robot's reason to another member and takes
// the robot out of rotation; a message's own failure would fail on every
// member, and is dead-lettered.
type Fault int

const (
	// FaultNone: the result is not Permanent.
	FaultNone Fault = iota
	// FaultMessage: the message can never be posted as it is (keywords,
	// size, content, type, an unknown refusal).
	FaultMessage
	// FaultRobot: the robot can post nothing (token unknown or invalid,
	// robot disabled or deleted, group disbanded, signature refused, IP not
	// whitelisted, webhook URL refused with 401, 403, 404 or 410).
	FaultRobot
)

// String is "none", "message" or "robot".
func (f Fault) String() string {
	switch f {
	case FaultMessage:
		return "message"
	case FaultRobot:
		return "robot"
	}
	return "none"
}

// robotReasons are the [Result.Reason] values of the built-in rules that
// name a failure of the robot, every platform's. A custom rule ([WithRules])
// whose Reason is one of these is a robot's fault too.
var robotReasons = map[string]bool{
	"token does not exist": true,
	"group disbanded":      true,
	"robot disabled":       true,
	"robot does not exist": true,
	"robot not found":      true,
	"sign not match":       true,
	"ip not in whitelist":  true,
	"ip not allowed":       true,
	"token invalid":        true,
	"sign not match or timestamp not within one hour (check the clock)": true,
	"invalid webhook url (a key is expected, not a URL)":                true,
}

// robotStatuses are the HTTP statuses (without a platform errcode) that
// refuse the webhook itself rather than the message.
var robotStatuses = map[int]bool{401: true, 403: true, 404: true, 410: true}

// Fault classifies a [Permanent] result as the robot's or the message's
// ([FaultNone] for any other outcome). An invalid timestamp is the
// message's: it is the sending host's clock, which another robot would not
// fix.
func (r Result) Fault() Fault {
	if r.Outcome != Permanent {
		return FaultNone
	}
	if robotReasons[r.Reason] {
		return FaultRobot
	}
	if r.ErrCode == 0 && robotStatuses[r.HTTPStatus] && r.Reason == "HTTP "+strconv.Itoa(r.HTTPStatus) {
		return FaultRobot
	}
	return FaultMessage
}
