package limiter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Default backoff after Reserve errors, see [Waiter].
const (
	DefaultErrorDelay    = 100 * time.Millisecond
	DefaultMaxErrorDelay = 2 * time.Second
)

// Waiter waits for a slot by calling Reserve until it is granted. The zero
// value is ready to use; each zero field means its default.
//
// Waiter fails closed: when Reserve errs (Redis down), it backs off and tries
// again, never granting a slot it could not reserve.
type Waiter struct {
	// MaxWait, when > 0, makes Wait return [ErrWaitTooLong] with the denying
	// Decision instead of sleeping longer than MaxWait at once; a worker then
	// parks the message elsewhere (e.g. during a ten-minute cool-off).
	MaxWait time.Duration
	// Jitter returns the extra delay added to a wait of d, to spread the
	// callers that wake for one slot. nil: random in [0, min(d/10, 100ms)].
	Jitter func(d time.Duration) time.Duration
	// Sleep pauses for d, returning early with ctx.Err() when ctx ends. nil:
	// a timer. Tests inject a fake one.
	Sleep func(ctx context.Context, d time.Duration) error
	// ErrorDelay is the first pause after a Reserve error, doubled at each
	// consecutive error up to MaxErrorDelay. Defaults: [DefaultErrorDelay],
	// [DefaultMaxErrorDelay].
	ErrorDelay    time.Duration
	MaxErrorDelay time.Duration
}

// Wait waits with a zero [Waiter]: see [Waiter.Wait].
func Wait(ctx context.Context, l Limiter, robot string, lim Limit) (Decision, error) {
	return Waiter{}.Wait(ctx, l, robot, lim)
}

// Wait calls l.Reserve until it grants robot a slot under lim, sleeping
// RetryAfter plus jitter between denials, and returns the granting Decision.
//
// It returns early, with a Decision that is not Allowed, when ctx ends (the
// error wraps ctx.Err() and the last Reserve error, if any), when the wait
// exceeds MaxWait ([ErrWaitTooLong], with the denying Decision), or when the
// arguments are invalid ([ErrInvalidLimit], [ErrInvalidRobot]).
func (w Waiter) Wait(ctx context.Context, l Limiter, robot string, lim Limit) (Decision, error) {
	sleep := w.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	jitter := w.Jitter
	if jitter == nil {
		jitter = defaultJitter
	}
	errDelay := w.ErrorDelay
	if errDelay <= 0 {
		errDelay = DefaultErrorDelay
	}
	maxErrDelay := w.MaxErrorDelay
	if maxErrDelay <= 0 {
		maxErrDelay = DefaultMaxErrorDelay
	}
	maxErrDelay = max(maxErrDelay, errDelay)

	var lastErr error
	nextErrDelay := errDelay
	for {
		if err := ctx.Err(); err != nil {
			return Decision{}, waitErr(robot, err, lastErr)
		}
		d, err := l.Reserve(ctx, robot, lim)
		var pause time.Duration
		switch {
		case errors.Is(err, ErrInvalidLimit), errors.Is(err, ErrInvalidRobot):
			return Decision{}, fmt.Errorf("limiter: wait: %w", err)
		case err != nil:
			lastErr = err
			pause = nextErrDelay
			nextErrDelay = min(2*nextErrDelay, maxErrDelay)
		case d.Allowed:
			return d, nil
		default:
			lastErr = nil
			nextErrDelay = errDelay
			if w.MaxWait > 0 && d.RetryAfter > w.MaxWait {
				return d, fmt.Errorf("limiter: wait for %q: %w: next slot in %v", robot, ErrWaitTooLong, d.RetryAfter)
			}
			pause = d.RetryAfter
		}
		if err := sleep(ctx, pause+max(jitter(pause), 0)); err != nil {
			return Decision{}, waitErr(robot, err, lastErr)
		}
	}
}

func waitErr(robot string, ctxErr, lastErr error) error {
	if lastErr != nil {
		return fmt.Errorf("limiter: wait for %q: %w (last error: %w)", robot, ctxErr, lastErr)
	}
	return fmt.Errorf("limiter: wait for %q: %w", robot, ctxErr)
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// defaultJitter returns a random delay in [0, min(d/10, 100ms)].
func defaultJitter(d time.Duration) time.Duration {
	j := min(d/10, 100*time.Millisecond)
	if j <= 0 {
		return 0
	}
	return rand.N(j + 1)
}
