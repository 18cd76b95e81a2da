package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultTTL is how long an entry is kept after its last change.
const DefaultTTL = 7 * 24 * time.Hour

// ErrUnavailable wraps errors of the backing store.
var ErrUnavailable = errors.New("ledger: store unavailable")

// State is what the ledger knows of one message.
type State struct {
	// Failures counts failed (retryable) delivery attempts.
	Failures int
	// FirstAttempt is when the first failed attempt was recorded; zero if none.
	FirstAttempt time.Time
	// Waits counts the times the message was handed back to JetStream to
	// wait for a rate slot or a cool-off (a delayed redelivery that is not
	// an attempt).
	Waits int
	// Delivered is true once a worker recorded the platform's success.
	Delivered bool
	// MessageID is the platform's message id, when it returned one.
	MessageID string
}

// Ledger is safe for concurrent use.
type Ledger interface {
	// Get returns the state of id (the zero State when unknown).
	Get(ctx context.Context, id string) (State, error)
	// RecordFailure counts one failed attempt of id made at time at and
	// returns the new state.
	RecordFailure(ctx context.Context, id string, at time.Time) (State, error)
	// RecordWait counts one hand-back of id to wait for a rate slot.
	RecordWait(ctx context.Context, id string) (State, error)
	// MarkDelivered records that id was delivered.
	MarkDelivered(ctx context.Context, id, messageID string) error
}

// Presence is a registry of the robots the running workers serve, an
// optional capability of a ledger that [Memory] and [Redis] implement.
// Each worker announces its robots periodically; a robot nobody announced
// within the ttl is served by no running worker. Safe for concurrent use.
type Presence interface {
	// Announce records that robots are served, for ttl from now.
	Announce(ctx context.Context, robots []string, ttl time.Duration) error
	// Served reports whether some worker announced robot within its ttl.
	Served(ctx context.Context, robot string) (bool, error)
}

// Memory is an in-process [Ledger] and [Presence] for the demo and
// single-process use.
type Memory struct {
	mu     sync.Mutex
	m      map[string]State
	served map[string]time.Time // robot -> announcement expiry
}

// NewMemory returns an empty in-process ledger.
func NewMemory() *Memory {
	return &Memory{m: make(map[string]State), served: make(map[string]time.Time)}
}

// Announce implements [Presence].
func (l *Memory) Announce(_ context.Context, robots []string, ttl time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	until := time.Now().Add(ttl)
	for _, r := range robots {
		l.served[r] = until
	}
	return nil
}

// Served implements [Presence].
func (l *Memory) Served(_ context.Context, robot string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Now().Before(l.served[robot]), nil
}

// Get implements [Ledger].
func (l *Memory) Get(_ context.Context, id string) (State, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[id], nil
}

// RecordFailure implements [Ledger].
func (l *Memory) RecordFailure(_ context.Context, id string, at time.Time) (State, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[id]
	s.Failures++
	if s.FirstAttempt.IsZero() {
		s.FirstAttempt = at
	}
	l.m[id] = s
	return s, nil
}

// RecordWait implements [Ledger].
func (l *Memory) RecordWait(_ context.Context, id string) (State, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[id]
	s.Waits++
	l.m[id] = s
	return s, nil
}

// MarkDelivered implements [Ledger].
func (l *Memory) MarkDelivered(_ context.Context, id, messageID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[id]
	s.Delivered, s.MessageID = true, messageID
	l.m[id] = s
	return nil
}

// Redis is a [Ledger] shared by every worker, one hash per message id
// ("<prefix>:ledger:{<id>}") expiring [DefaultTTL] after its last change,
// and a [Presence]. Each call is one round trip.
type Redis struct {
	rdb    redis.Cmdable
	prefix string
	ttl    time.Duration
}

// NewRedis returns a ledger on rdb with keys under prefix ("botrelay" when
// empty); ttl 0 means [DefaultTTL].
func NewRedis(rdb redis.Cmdable, prefix string, ttl time.Duration) *Redis {
	if prefix == "" {
		prefix = "botrelay"
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Redis{rdb: rdb, prefix: prefix, ttl: ttl}
}

func (l *Redis) key(id string) string { return l.prefix + ":ledger:{" + id + "}" }

func (l *Redis) servedKey(robot string) string { return l.prefix + ":served:{" + robot + "}" }

// Announce implements [Presence]: one key per robot
// ("<prefix>:served:{<robot>}") set with a ttl, in one pipeline.
func (l *Redis) Announce(ctx context.Context, robots []string, ttl time.Duration) error {
	if len(robots) == 0 {
		return nil
	}
	// Not a transaction: on a cluster the keys live in different slots.
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range robots {
			p.Set(ctx, l.servedKey(r), "1", ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: announce %d robots: %v", ErrUnavailable, len(robots), err)
	}
	return nil
}

// Served implements [Presence].
func (l *Redis) Served(ctx context.Context, robot string) (bool, error) {
	n, err := l.rdb.Exists(ctx, l.servedKey(robot)).Result()
	if err != nil {
		return false, fmt.Errorf("%w: served %s: %v", ErrUnavailable, robot, err)
	}
	return n == 1, nil
}

const (
	fieldFailures  = "failures"
	fieldWaits     = "waits"
	fieldFirst     = "first_ms"
	fieldDelivered = "delivered"
	fieldMsgID     = "msg_id"
)

// Get implements [Ledger].
func (l *Redis) Get(ctx context.Context, id string) (State, error) {
	m, err := l.rdb.HGetAll(ctx, l.key(id)).Result()
	if err != nil {
		return State{}, fmt.Errorf("%w: get %s: %v", ErrUnavailable, id, err)
	}
	return parseState(m), nil
}

// RecordFailure implements [Ledger].
func (l *Redis) RecordFailure(ctx context.Context, id string, at time.Time) (State, error) {
	k := l.key(id)
	var all *redis.MapStringStringCmd
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HIncrBy(ctx, k, fieldFailures, 1)
		p.HSetNX(ctx, k, fieldFirst, strconv.FormatInt(at.UnixMilli(), 10))
		p.Expire(ctx, k, l.ttl)
		all = p.HGetAll(ctx, k)
		return nil
	})
	if err != nil {
		return State{}, fmt.Errorf("%w: record failure %s: %v", ErrUnavailable, id, err)
	}
	return parseState(all.Val()), nil
}

// RecordWait implements [Ledger].
func (l *Redis) RecordWait(ctx context.Context, id string) (State, error) {
	k := l.key(id)
	var all *redis.MapStringStringCmd
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HIncrBy(ctx, k, fieldWaits, 1)
		p.Expire(ctx, k, l.ttl)
		all = p.HGetAll(ctx, k)
		return nil
	})
	if err != nil {
		return State{}, fmt.Errorf("%w: record wait %s: %v", ErrUnavailable, id, err)
	}
	return parseState(all.Val()), nil
}

// MarkDelivered implements [Ledger].
func (l *Redis) MarkDelivered(ctx context.Context, id, messageID string) error {
	k := l.key(id)
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, fieldDelivered, "1", fieldMsgID, messageID)
		p.Expire(ctx, k, l.ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: mark delivered %s: %v", ErrUnavailable, id, err)
	}
	return nil
}

func parseState(m map[string]string) State {
	var s State
	s.Failures, _ = strconv.Atoi(m[fieldFailures])
	s.Waits, _ = strconv.Atoi(m[fieldWaits])
	if ms, err := strconv.ParseInt(m[fieldFirst], 10, 64); err == nil {
		s.FirstAttempt = time.UnixMilli(ms)
	}
	s.Delivered = m[fieldDelivered] == "1"
	s.MessageID = m[fieldMsgID]
	return s
}
