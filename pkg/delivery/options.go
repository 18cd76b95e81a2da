package delivery

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Option configures a [Deliverer]; see [New].
type Option func(*options) error

type options struct {
	client  *http.Client
	now     func() time.Time
	timeout time.Duration
	rules   map[string][]Rule
	logger  *slog.Logger
	proxy   func(*http.Request) (*url.URL, error)
	maxWait time.Duration
}

// WithHTTPClient makes the Deliverer send with c instead of the default
// client ([NewHTTPClient]). c is used as is.
//
// A write deadline ([WithWriteDeadline]) is enforced exactly, with
// [NotSent] when it passes, only when c's Transport is an [http.Transport]
// whose Protocols allow HTTP/1 alone (as [NewTransport]'s). With any other
// client the request is still cancelled at the deadline if it was not
// written yet, but whether it left cannot be known: the result is
// Retryable, never NotSent.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return fmt.Errorf("%w: nil HTTP client", ErrInvalidOption)
		}
		o.client = c
		return nil
	}
}

// WithClock sets the clock used to sign requests and read Retry-After
// dates (default [time.Now]).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidOption)
		}
		o.now = now
		return nil
	}
}

// WithTimeout bounds each request, body included (default [DefaultTimeout]).
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: timeout %s must be positive", ErrInvalidOption, d)
		}
		o.timeout = d
		return nil
	}
}

// WithRules adds errcode rules for platform (one of [PlatformNames]). They are tried before the [DefaultRules], so they
// override them; several WithRules add up, in order. POPO publishes no
// error-code list: this is how the real codes are taught once known.
func WithRules(platform string, rules ...Rule) Option {
	return func(o *options) error {
		if lookup(platform) == nil {
			return fmt.Errorf("%w: unknown platform %q", ErrInvalidOption, platform)
		}
		for i, r := range rules {
			if err := r.validate(); err != nil {
				return fmt.Errorf("rule %d for %s: %w", i, platform, err)
			}
		}
		o.rules[platform] = append(o.rules[platform], cloneRules(rules)...)
		return nil
	}
}

// WithLogger sets the logger (nil means [slog.Default]). Attempts are
// logged at debug level with the robot's name and [Redact]ed webhook.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		o.logger = l
		return nil
	}
}

// WithProxy sets the proxy function of the default client's transport
// instead of [http.ProxyFromEnvironment]. It cannot be combined with
// [WithHTTPClient].
func WithProxy(proxy func(*http.Request) (*url.URL, error)) Option {
	return func(o *options) error {
		if proxy == nil {
			return fmt.Errorf("%w: nil proxy function", ErrInvalidOption)
		}
		o.proxy = proxy
		return nil
	}
}

// WithMaxRetryAfter caps every delay a platform, a proxy or a rule asks
// for: Retry-After headers, the anti-abuse gateway's "wait", rule
// RetryAfters (default [DefaultMaxRetryAfter]). [Result.RetryAfter] is
// never longer; DingTalk's 90030 quota answer waits exactly this long.
func WithMaxRetryAfter(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: max retry-after %s must be positive", ErrInvalidOption, d)
		}
		o.maxWait = d
		return nil
	}
}
