package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Digests records the composition of digests (several messages folded into
// one post), an optional capability of a ledger that [Redis] implements.
// A worker records a digest's items before posting it, so a worker that
// picks the same messages up again (after a crash between the platform's
// answer and the acks) rebuilds the same digest rather than a different
// one. Entries live as long as the ledger's others ([DefaultTTL] unless
// changed). [Redis] and [Memory] implement it.
type Digests interface {
	// PlanDigest records that digest id folds keys, in order.
	PlanDigest(ctx context.Context, id string, keys []string) error
	// DigestsOf returns, for each of keys, the digest it was planned
	// into, "" for none.
	DigestsOf(ctx context.Context, keys []string) ([]string, error)
	// DigestKeys returns the keys digest id folds, in order; nil when it
	// is unknown.
	DigestKeys(ctx context.Context, id string) ([]string, error)
}

// DigestNotes keeps digest statistics for `producer status`, an optional
// capability of a ledger that [Redis] implements.
type DigestNotes interface {
	// NoteDigest adds a posted digest to robot's statistics ([DigestStats]).
	NoteDigest(ctx context.Context, robot string, items, bytes int, at time.Time) error
}

var (
	_ Digests     = (*Redis)(nil)
	_ Digests     = (*Memory)(nil)
	_ DigestNotes = (*Redis)(nil)
)

// DigestStats are one robot's digest statistics, as [Redis.NoteDigest]
// keeps them for `producer status`.
type DigestStats struct {
	// Folded is the messages posted in digests.
	Folded int64
	// Digests is the digests posted.
	Digests int64
	// LastItems and LastBytes are the size of the last digest; LastAt when
	// it was accepted (zero: none yet).
	LastItems int
	LastBytes int
	LastAt    time.Time
}

func (l *Redis) digestOfKey(k string) string    { return l.prefix + ":dg:{" + k + "}" }
func (l *Redis) digestKeysKey(id string) string { return l.prefix + ":dgk:{" + id + "}" }

// DigestStatsKey is the Redis hash of robot's digest statistics under a
// ledger's prefix ("botrelay" when empty): fields folded, digests,
// last_items, last_bytes, last_at (Unix ms).
func DigestStatsKey(prefix, robot string) string {
	if prefix == "" {
		prefix = "botrelay"
	}
	return prefix + ":digeststats:{" + robot + "}"
}

// PlanDigest implements [Digests]: the item list under
// "<prefix>:dgk:{<id>}" and each key's digest under "<prefix>:dg:{<key>}",
// in one pipeline (keys in different slots on a cluster), the list first.
func (l *Redis) PlanDigest(ctx context.Context, id string, keys []string) error {
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, l.digestKeysKey(id), strings.Join(keys, "\n"), l.ttl)
		for _, k := range keys {
			p.Set(ctx, l.digestOfKey(k), id, l.ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: plan digest %s: %w", ErrUnavailable, id, err)
	}
	return nil
}

// DigestsOf implements [Digests] in one pipeline.
func (l *Redis) DigestsOf(ctx context.Context, keys []string) ([]string, error) {
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, l.digestOfKey(k))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: digests of %d messages: %w", ErrUnavailable, len(keys), err)
	}
	out := make([]string, len(keys))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// DigestKeys implements [Digests].
func (l *Redis) DigestKeys(ctx context.Context, id string) ([]string, error) {
	s, err := l.rdb.Get(ctx, l.digestKeysKey(id)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%w: digest %s: %w", ErrUnavailable, id, err)
	}
	return strings.Split(s, "\n"), nil
}

// NoteDigest implements [DigestNotes]: one hash per robot
// ([DigestStatsKey]), kept without expiry.
func (l *Redis) NoteDigest(ctx context.Context, robot string, items, bytes int, at time.Time) error {
	k := DigestStatsKey(l.prefix, robot)
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HIncrBy(ctx, k, "folded", int64(items))
		p.HIncrBy(ctx, k, "digests", 1)
		p.HSet(ctx, k, "last_items", items, "last_bytes", bytes, "last_at", at.UnixMilli())
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: digest statistics of %s: %w", ErrUnavailable, robot, err)
	}
	return nil
}

// ReadDigestStats reads robot's digest statistics under prefix; the zero
// DigestStats when it never posted one.
func ReadDigestStats(ctx context.Context, rdb redis.Cmdable, prefix, robot string) (DigestStats, error) {
	m, err := rdb.HGetAll(ctx, DigestStatsKey(prefix, robot)).Result()
	if err != nil {
		return DigestStats{}, fmt.Errorf("%w: digest statistics of %s: %w", ErrUnavailable, robot, err)
	}
	num := func(f string) int64 { n, _ := strconv.ParseInt(m[f], 10, 64); return n }
	st := DigestStats{Folded: num("folded"), Digests: num("digests"), LastItems: int(num("last_items")), LastBytes: int(num("last_bytes"))}
	if ms := num("last_at"); ms > 0 {
		st.LastAt = time.UnixMilli(ms)
	}
	return st, nil
}

// memDigestKey is the entry of a digest plan in a [Memory] ledger: a
// prefix no worker key ("<robot>/<id>") can start with. The plan is held
// in State.MessageID.
func memDigestKey(kind, k string) string { return "\x00" + kind + "/" + k }

// PlanDigest implements [Digests].
func (l *Memory) PlanDigest(_ context.Context, id string, keys []string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.put(memDigestKey("dgk", id), State{MessageID: strings.Join(keys, "\n")})
	for _, k := range keys {
		l.put(memDigestKey("dg", k), State{MessageID: id})
	}
	return nil
}

// DigestsOf implements [Digests].
func (l *Memory) DigestsOf(_ context.Context, keys []string) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = l.get(memDigestKey("dg", k)).MessageID
	}
	return out, nil
}

// DigestKeys implements [Digests].
func (l *Memory) DigestKeys(_ context.Context, id string) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(memDigestKey("dgk", id)).MessageID
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\n"), nil
}
