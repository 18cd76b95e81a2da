package limiter

import (
	"context"
	"time"
)

// Limit is one robot's budget: at most Max sends in any rolling Window.
type Limit struct {
	// Max is how many messages may be sent in any rolling Window.
	Max int
	// Window is the platform's counting window (one minute for DingTalk and POPO).
	Window time.Duration
	// Margin is added to Window when counting, to absorb the delay between a
	// reservation and the request's arrival at the platform.
	Margin time.Duration
}

// Decision is the answer to [Limiter.Reserve].
type Decision struct {
	// Allowed is true when a send slot was reserved: send now.
	Allowed bool
	// RetryAfter is, when not allowed, how long until a slot may be free.
	RetryAfter time.Duration
	// CoolingOff is true when the robot is in a ban cool-off.
	CoolingOff bool
}

// Limiter is the per-robot gate every worker passes before each HTTP request.
// Implementations are safe for concurrent use by many goroutines and, for the
// Redis one, by many processes.
type Limiter interface {
	// Reserve atomically checks robot's cool-off and its window and either
	// records a send now (Allowed) or says how long to wait.
	Reserve(ctx context.Context, robot string, l Limit) (Decision, error)
	// CoolOff starts, or extends, robot's cool-off for d from now. No slot
	// is granted for robot until it ends.
	CoolOff(ctx context.Context, robot string, d time.Duration) error
}
