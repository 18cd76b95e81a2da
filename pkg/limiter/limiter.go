package limiter

import (
	"context"
	"sort"
	"time"
)

// Limit is one robot's budget: at most Max sends in any rolling Window,
// and, for each of Also, at most its Max in any rolling window of its
// own (Feishu: 100 per minute and 5 per second). All the windows are
// decided together, in one atomic decision, over one log of grants.
type Limit struct {
	// Max is how many messages may be sent in any rolling Window.
	Max int
	// Window is the platform's counting window (one minute for DingTalk and POPO).
	Window time.Duration
	// Margin is added to Window when counting, to absorb the delay between a
	// reservation and the request's arrival at the platform.
	Margin time.Duration
	// Also are further windows, each exact in every rolling window of its
	// length, with the same Margin. Optional.
	Also []Window
}

// Window is one further window of a [Limit]: at most Max sends in any
// rolling Window (plus the Limit's Margin).
type Window struct {
	Max    int
	Window time.Duration
}

// window is one window of a limit with its margin: max grants per span.
type window struct {
	max  int
	span time.Duration
}

// windows returns every window of l, the longest span first. l is valid.
func (l Limit) windows() []window {
	ws := []window{{l.Max, l.Window + l.Margin}}
	for _, a := range l.Also {
		ws = append(ws, window{a.Max, a.Window + l.Margin})
	}
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].span > ws[j].span })
	return ws
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
