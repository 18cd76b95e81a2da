package limiter

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

var (
	// ErrInvalidOption reports an option given a value it does not accept.
	ErrInvalidOption = errors.New("limiter: invalid option")
	// ErrInvalidLimit reports a [Limit] that cannot be enforced (Max < 1,
	// Window <= 0 or Margin < 0).
	ErrInvalidLimit = errors.New("limiter: invalid limit")
	// ErrInvalidRobot reports a robot name that is empty or holds '{' or '}'
	// (they would break the Redis hash tag that keeps a robot's keys together).
	ErrInvalidRobot = errors.New("limiter: invalid robot name")
	// ErrUnavailable reports that the decision could not be made: Redis could
	// not be reached, timed out or answered with an error. Fail closed: treat
	// it as "not allowed, retry soon".
	ErrUnavailable = errors.New("limiter: store unavailable")
	// ErrEvictionPolicy is returned by [Redis.Load] when Redis may evict
	// keys (a maxmemory-policy other than noeviction): an evicted window or
	// cool-off would let a robot be posted past its limit or into a ban.
	ErrEvictionPolicy = errors.New("limiter: Redis may evict keys")
	// ErrWaitTooLong is returned by [Waiter.Wait] when the next slot is further
	// away than [Waiter.MaxWait].
	ErrWaitTooLong = errors.New("limiter: wait exceeds the maximum")
)

// checkLimit validates l and returns its counting span, Window + Margin.
func checkLimit(l Limit) (time.Duration, error) {
	switch {
	case l.Max < 1:
		return 0, fmt.Errorf("%w: Max %d < 1", ErrInvalidLimit, l.Max)
	case l.Window <= 0:
		return 0, fmt.Errorf("%w: Window %v <= 0", ErrInvalidLimit, l.Window)
	case l.Margin < 0:
		return 0, fmt.Errorf("%w: Margin %v < 0", ErrInvalidLimit, l.Margin)
	}
	for i, a := range l.Also {
		switch {
		case a.Max < 1:
			return 0, fmt.Errorf("%w: Also[%d].Max %d < 1", ErrInvalidLimit, i, a.Max)
		case a.Window <= 0:
			return 0, fmt.Errorf("%w: Also[%d].Window %v <= 0", ErrInvalidLimit, i, a.Window)
		}
	}
	return l.Window + l.Margin, nil
}

// checkRobot validates a robot name.
func checkRobot(robot string) error {
	if robot == "" {
		return fmt.Errorf("%w: empty", ErrInvalidRobot)
	}
	if strings.ContainsAny(robot, "{}") {
		return fmt.Errorf("%w: %q holds '{' or '}'", ErrInvalidRobot, robot)
	}
	return nil
}
