package limiter

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// keysKey is the hash, under prefix, of every configured robot's limiter
// key by robot name, kept for the tools that read the limiter without the
// robots' webhooks (the console, producer status).
func keysKey(prefix string) string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return prefix + ":keys"
}

// PublishKeys records, in one round trip, the limiter key (the platform
// robot's identity) of each robot name in keys. Workers call it at start;
// a renamed robot's old name stays until overwritten, harmlessly.
func PublishKeys(ctx context.Context, rdb redis.Cmdable, prefix string, keys map[string]string) error {
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(keys))
	for name, key := range keys {
		args = append(args, name, key)
	}
	if err := rdb.HSet(ctx, keysKey(prefix), args...).Err(); err != nil {
		return fmt.Errorf("limiter: publish keys: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// LookupKeys returns the limiter keys the workers published, by robot
// name (empty when none did).
func LookupKeys(ctx context.Context, rdb redis.Cmdable, prefix string) (map[string]string, error) {
	m, err := rdb.HGetAll(ctx, keysKey(prefix)).Result()
	if err != nil {
		return nil, fmt.Errorf("limiter: look up keys: %w: %w", ErrUnavailable, err)
	}
	return m, nil
}

// KeyedInspector is an [Inspector] by robot name: it looks each name's
// limiter key up among the keys the workers published ([PublishKeys]),
// refreshed at most every refresh, and inspects the robot under it (under
// the name itself when no worker published one). Safe for concurrent use.
type KeyedInspector struct {
	in      Inspector
	rdb     redis.Cmdable
	prefix  string
	refresh time.Duration
	now     func() time.Time

	mu      sync.Mutex
	keys    map[string]string
	fetched time.Time
}

// NewKeyedInspector returns a [KeyedInspector] over in, reading the keys
// from rdb under prefix; refresh 0 means 10s.
func NewKeyedInspector(in Inspector, rdb redis.Cmdable, prefix string, refresh time.Duration) *KeyedInspector {
	if refresh <= 0 {
		refresh = 10 * time.Second
	}
	return &KeyedInspector{in: in, rdb: rdb, prefix: prefix, refresh: refresh, now: time.Now}
}

// Inspect implements [Inspector] for robot, a robot name.
func (k *KeyedInspector) Inspect(ctx context.Context, robot string, l Limit) (State, error) {
	key, err := k.key(ctx, robot)
	if err != nil {
		return State{}, err
	}
	return k.in.Inspect(ctx, key, l)
}

func (k *KeyedInspector) key(ctx context.Context, robot string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys == nil || k.now().Sub(k.fetched) >= k.refresh {
		keys, err := LookupKeys(ctx, k.rdb, k.prefix)
		if err != nil {
			return "", err
		}
		k.keys, k.fetched = keys, k.now()
	}
	if key, ok := k.keys[robot]; ok && key != "" {
		return key, nil
	}
	return robot, nil
}
