package limiter

import (
	"fmt"
	"strings"
)

// DefaultPrefix starts every Redis key unless [WithPrefix] says otherwise.
const DefaultPrefix = "botrelay"

// Option configures [NewRedis]. Options validate their value and return an
// error wrapping [ErrInvalidOption] when it is unusable.
type Option func(*redisOptions) error

type redisOptions struct {
	prefix string
}

// WithPrefix sets the prefix of every key (default [DefaultPrefix]). Every
// process limiting the same robots must use the same prefix. The prefix must
// be non-empty and hold no '{' or '}'.
func WithPrefix(p string) Option {
	return func(o *redisOptions) error {
		if p == "" {
			return fmt.Errorf("%w: empty prefix", ErrInvalidOption)
		}
		if strings.ContainsAny(p, "{}") {
			return fmt.Errorf("%w: prefix %q holds '{' or '}'", ErrInvalidOption, p)
		}
		o.prefix = p
		return nil
	}
}
