package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/ledger"
)

func newRedis(t *testing.T) (*ledger.Redis, *redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { _ = rdb.Close() })
	require.NoError(t, rdb.Ping(context.Background()).Err(), "redis must run at 127.0.0.1:6379")
	prefix := fmt.Sprintf("test-ledger-%s-%d", t.Name(), time.Now().UnixNano())
	return ledger.NewRedis(rdb, prefix, time.Minute), rdb, prefix
}

type impl struct {
	name string
	mk   func(t *testing.T) ledger.Ledger
}

func impls() []impl {
	return []impl{
		{"memory", func(*testing.T) ledger.Ledger { return ledger.NewMemory() }},
		{"redis", func(t *testing.T) ledger.Ledger {
			l, _, _ := newRedis(t)
			return l
		}},
	}
}

func TestLedgers(t *testing.T) {
	for _, im := range impls() {
		t.Run(im.name, func(t *testing.T) {
			ctx := context.Background()
			l := im.mk(t)
			s, err := l.Get(ctx, "ops/m1")
			require.NoError(t, err)
			require.Equal(t, ledger.State{}, s)

			t0 := time.UnixMilli(1_700_000_000_000)
			s, err = l.RecordWait(ctx, "ops/m1", "w1", 3*time.Second)
			require.NoError(t, err)
			require.Equal(t, ledger.State{Waits: 1}, s, "a wait before any failure adds no waited time")

			s, err = l.RecordFailure(ctx, "ops/m1", "w1", t0)
			require.NoError(t, err)
			require.Equal(t, 1, s.Failures)
			require.True(t, s.FirstAttempt.Equal(t0))

			s, err = l.RecordFailure(ctx, "ops/m1", "w1", t0.Add(time.Minute))
			require.NoError(t, err)
			require.Equal(t, 2, s.Failures)
			require.True(t, s.FirstAttempt.Equal(t0), "first attempt is kept")

			s, err = l.RecordWait(ctx, "ops/m1", "w1", 1500*time.Millisecond)
			require.NoError(t, err)
			require.Equal(t, 2, s.Waits)
			require.Equal(t, 2, s.Failures, "a wait is not a failure")
			require.Equal(t, 1500*time.Millisecond, s.Waited)

			s, err = l.RecordThrottle(ctx, "ops/m1", "w1", 10*time.Minute)
			require.NoError(t, err)
			require.Equal(t, 1, s.Throttles)
			require.Equal(t, 2, s.Waits, "a throttle is not a hand-back")
			require.Equal(t, 10*time.Minute+1500*time.Millisecond, s.Waited)

			require.NoError(t, l.MarkDelivered(ctx, "ops/m1", "w1", "platform-7"))
			s, err = l.Get(ctx, "ops/m1")
			require.NoError(t, err)
			require.Equal(t, ledger.State{Failures: 2, FirstAttempt: s.FirstAttempt, Waits: 2, Waited: 10*time.Minute + 1500*time.Millisecond,
				Throttles: 1, Delivered: true, MessageID: "platform-7"}, s)

			other, err := l.Get(ctx, "dev/m1")
			require.NoError(t, err)
			require.Equal(t, ledger.State{}, other, "keys are independent")

			require.NoError(t, l.MarkPermanent(ctx, "ops/m2", "w1", `{"errcode":310000}`))
			s, err = l.Get(ctx, "ops/m2")
			require.NoError(t, err)
			require.Equal(t, ledger.State{Permanent: `{"errcode":310000}`}, s)
		})
	}
}

// TestClaimRule holds both ledgers to one rule for the check made before
// every request.
func TestClaimRule(t *testing.T) {
	ctx := context.Background()
	for _, im := range impls() {
		t.Run(im.name, func(t *testing.T) {
			l := im.mk(t)
			claim := func(key, holder string, lease time.Duration, takeover bool) ledger.Claim {
				t.Helper()
				c, _, err := l.Claim(ctx, key, holder, lease, takeover)
				require.NoError(t, err)
				return c
			}
			require.Equal(t, ledger.Claimed, claim("r/a", "w1", time.Minute, false), "a fresh message")
			require.Equal(t, ledger.Claimed, claim("r/a", "w1", time.Minute, false), "its own mark again")
			c, st, err := l.Claim(ctx, "r/a", "w2", time.Minute, true)
			require.NoError(t, err)
			require.Equal(t, ledger.HeldByOther, c, "another holder's live lease, even with takeover")
			require.Equal(t, "w1", st.Holder)
			require.WithinDuration(t, time.Now().Add(time.Minute), st.HeldUntil, 5*time.Second)

			require.Equal(t, ledger.Claimed, claim("r/b", "w1", 50*time.Millisecond, false))
			time.Sleep(120 * time.Millisecond)
			require.Equal(t, ledger.UnknownOutcome, claim("r/b", "w2", time.Minute, false), "lease ended without an outcome")
			require.Equal(t, ledger.Claimed, claim("r/b", "w2", time.Minute, true), "taken over")
			c, st, err = l.Claim(ctx, "r/b", "w3", time.Minute, false)
			require.NoError(t, err)
			require.Equal(t, ledger.HeldByOther, c)
			require.Equal(t, "w2", st.Holder, "the mark is the new holder's")

			require.Equal(t, ledger.Claimed, claim("r/c", "w1", time.Minute, false))
			require.NoError(t, l.Release(ctx, "r/c", "w2"), "a release by another holder")
			require.Equal(t, ledger.HeldByOther, claim("r/c", "w2", time.Minute, false), "does not clear w1's mark")
			require.NoError(t, l.Release(ctx, "r/c", "w1"))
			require.Equal(t, ledger.Claimed, claim("r/c", "w2", time.Minute, false), "released: free to claim")
			_, err = l.RecordFailure(ctx, "r/c", "w2", time.Now())
			require.NoError(t, err)
			s, err := l.Get(ctx, "r/c")
			require.NoError(t, err)
			require.Equal(t, "", s.Holder, "recording an outcome clears the holder's mark")
			require.Equal(t, ledger.Claimed, claim("r/c", "w3", time.Minute, false))

			require.Equal(t, ledger.Claimed, claim("r/d", "w1", time.Minute, false))
			require.NoError(t, l.MarkDelivered(ctx, "r/d", "w1", ""))
			require.Equal(t, ledger.AlreadyDelivered, claim("r/d", "w2", time.Minute, true))

			require.Equal(t, ledger.Claimed, claim("r/e", "w1", time.Minute, false))
			require.NoError(t, l.MarkPermanent(ctx, "r/e", "w1", "sign not match"))
			c, st, err = l.Claim(ctx, "r/e", "w1", time.Minute, false)
			require.NoError(t, err)
			require.Equal(t, ledger.AlreadyPermanent, c)
			require.Equal(t, "sign not match", st.Permanent)
		})
	}
}

// TestClaimIsExclusive: of many workers claiming one message at once,
// exactly one gets it.
func TestClaimIsExclusive(t *testing.T) {
	ctx := context.Background()
	for _, im := range impls() {
		t.Run(im.name, func(t *testing.T) {
			l := im.mk(t)
			var mu sync.Mutex
			got := map[ledger.Claim]int{}
			var wg sync.WaitGroup
			for i := range 16 {
				wg.Go(func() {
					c, _, err := l.Claim(ctx, "r/x", fmt.Sprintf("w%d", i), time.Minute, false)
					require.NoError(t, err)
					mu.Lock()
					got[c]++
					mu.Unlock()
				})
			}
			wg.Wait()
			require.Equal(t, map[ledger.Claim]int{ledger.Claimed: 1, ledger.HeldByOther: 15}, got)
		})
	}
}

func TestRedisKeysExpire(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { _ = rdb.Close() })
	prefix := fmt.Sprintf("test-ledger-ttl-%d", time.Now().UnixNano())
	l := ledger.NewRedis(rdb, prefix, time.Hour).WithDoneTTL(2 * time.Minute)
	pttl := func(k string) time.Duration {
		t.Helper()
		d, err := rdb.PTTL(ctx, l.Key(k)).Result()
		require.NoError(t, err)
		return d
	}
	_, _, err := l.Claim(ctx, "r/x", "w1", time.Second, false)
	require.NoError(t, err)
	require.InDelta(t, float64(time.Hour), float64(pttl("r/x")), float64(5*time.Second), "an entry in flight lives the TTL")
	require.NoError(t, l.MarkDelivered(ctx, "r/x", "w1", ""))
	require.InDelta(t, float64(2*time.Minute), float64(pttl("r/x")), float64(5*time.Second), "a delivered entry lives the done TTL")
	// Its message is read again (its delete failed): the entry lives the
	// done TTL from then, or the message would be posted again.
	require.NoError(t, rdb.PExpire(ctx, l.Key("r/x"), 3*time.Second).Err())
	c, _, err := l.Claim(ctx, "r/x", "w2", time.Second, false)
	require.NoError(t, err)
	require.Equal(t, ledger.AlreadyDelivered, c)
	require.InDelta(t, float64(2*time.Minute), float64(pttl("r/x")), float64(5*time.Second), "a delivered entry read again lives the done TTL from then")
	require.NoError(t, rdb.PExpire(ctx, l.Key("r/x"), 10*time.Minute).Err())
	c, _, err = l.Claim(ctx, "r/x", "w2", time.Second, false)
	require.NoError(t, err)
	require.Equal(t, ledger.AlreadyDelivered, c)
	require.InDelta(t, float64(10*time.Minute), float64(pttl("r/x")), float64(5*time.Second), "a longer TTL left is not shortened")
	require.NoError(t, l.Release(ctx, "r/none", "w1"))
	n, err := rdb.Exists(ctx, l.Key("r/none")).Result()
	require.NoError(t, err)
	require.Zero(t, n, "releasing nothing leaves no key")
}

// TestRedisEntrySize measures what one delivered message costs in Redis
// (docs/limiter.md quotes it): a claimed, delivered entry with a platform
// message id.
func TestRedisEntrySize(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { _ = rdb.Close() })
	// A prefix as long as production's "botrelay".
	l := ledger.NewRedis(rdb, fmt.Sprintf("b%07d", time.Now().UnixNano()%10_000_000), time.Minute)
	key := "ops-alerts/0193a0c2-7f1e-7b3a-9c1d-5e6f7a8b9c0d"
	_, _, err := l.Claim(ctx, key, "worker-7c9f-12345", 10*time.Second, false)
	require.NoError(t, err)
	require.NoError(t, l.MarkDelivered(ctx, key, "worker-7c9f-12345", "8392017746"))
	n, err := rdb.MemoryUsage(ctx, l.Key(key)).Result()
	require.NoError(t, err)
	t.Logf("a delivered entry uses %d bytes", n)
	require.LessOrEqual(t, n, int64(144), "entries stay compact (docs/limiter.md: ~136 B)")
}

func TestRedisUnavailable(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	l := ledger.NewRedis(rdb, "x", 0)
	_, err := l.Get(context.Background(), "id")
	require.ErrorIs(t, err, ledger.ErrUnavailable)
	_, err = l.RecordFailure(context.Background(), "id", "w", time.Now())
	require.ErrorIs(t, err, ledger.ErrUnavailable)
	_, err = l.RecordWait(context.Background(), "id", "w", time.Second)
	require.ErrorIs(t, err, ledger.ErrUnavailable)
	_, _, err = l.Claim(context.Background(), "id", "w", time.Second, false)
	require.ErrorIs(t, err, ledger.ErrUnavailable)
	require.ErrorIs(t, l.MarkDelivered(context.Background(), "id", "w", ""), ledger.ErrUnavailable)
	require.ErrorIs(t, l.MarkPermanent(context.Background(), "id", "w", "x"), ledger.ErrUnavailable)
	require.ErrorIs(t, l.Announce(context.Background(), ledger.Announcement{Worker: "w", Robots: []string{"ops"}, TTL: time.Minute}), ledger.ErrUnavailable)
	_, err = l.Members(context.Background())
	require.ErrorIs(t, err, ledger.ErrUnavailable)
}

// The memory ledger forgets entries as the Redis one does: DefaultTTL after
// the last change, DefaultDoneTTL once delivered.
func TestMemoryEntriesExpire(t *testing.T) {
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000)
	l := ledger.NewMemoryClock(func() time.Time { return now })
	_, err := l.RecordFailure(ctx, "r/a", "w", now)
	require.NoError(t, err)
	require.NoError(t, l.MarkDelivered(ctx, "r/b", "w", ""))
	require.NoError(t, l.MarkDelivered(ctx, "r/c", "w", ""))
	now = now.Add(ledger.DefaultDoneTTL - time.Second)
	// r/c's message is read again (its delete failed): kept from then.
	c, _, err := l.Claim(ctx, "r/c", "w2", time.Second, false)
	require.NoError(t, err)
	require.Equal(t, ledger.AlreadyDelivered, c)
	now = now.Add(time.Second)
	cs, err := l.Get(ctx, "r/c")
	require.NoError(t, err)
	require.True(t, cs.Delivered, "a delivered entry read again lives the done TTL from then")
	b, err := l.Get(ctx, "r/b")
	require.NoError(t, err)
	require.Equal(t, ledger.State{}, b, "a delivered entry is gone after the done TTL")
	a, err := l.Get(ctx, "r/a")
	require.NoError(t, err)
	require.Equal(t, 1, a.Failures, "an entry being worked on is kept longer")
	now = now.Add(ledger.DefaultTTL)
	a, err = l.Get(ctx, "r/a")
	require.NoError(t, err)
	require.Equal(t, ledger.State{}, a)
	for i := range 3000 { // the sweep drops what nobody reads again
		require.NoError(t, l.MarkDelivered(ctx, fmt.Sprintf("r/m%d", i), "w", ""))
		now = now.Add(time.Second)
	}
	require.LessOrEqual(t, l.Len(), int(ledger.DefaultDoneTTL/time.Second)+1024)
	require.NoError(t, l.Release(ctx, "r/none", "w"))
}

// A pool message's claim records the member its request goes to: the
// worker that takes it over after its holder died reads it in the state
// (UnknownOutcome). A claim without a member (a wait mark, another
// robot's message) leaves it.
func TestClaimMember(t *testing.T) {
	for _, im := range impls() {
		t.Run(im.name, func(t *testing.T) {
			ctx := context.Background()
			l, ok := im.mk(t).(ledger.MemberClaimer)
			require.True(t, ok, "both ledgers record members")
			c, st, err := l.ClaimMember(ctx, "pool/m1", "dead/1", "pool-2", time.Millisecond, false)
			require.NoError(t, err)
			require.Equal(t, ledger.Claimed, c)
			require.Empty(t, st.Member, "the state before the mark")
			time.Sleep(5 * time.Millisecond)
			c, st, err = l.ClaimMember(ctx, "pool/m1", "w2", "pool-1", time.Minute, false)
			require.NoError(t, err)
			require.Equal(t, ledger.UnknownOutcome, c)
			require.Equal(t, "pool-2", st.Member, "the dead holder's member")
			require.Equal(t, "dead/1", st.Holder)
			c, _, err = l.ClaimMember(ctx, "pool/m1", "w2", "pool-2", time.Minute, true)
			require.NoError(t, err)
			require.Equal(t, ledger.Claimed, c, "taken over")
			require.NoError(t, l.(ledger.Ledger).Release(ctx, "pool/m1", "w2"))
			c, st, err = l.(ledger.Ledger).Claim(ctx, "pool/m1", "w2#wait", time.Minute, true)
			require.NoError(t, err)
			require.Equal(t, ledger.Claimed, c)
			require.Equal(t, "pool-2", st.Member)
			s, err := l.(ledger.Ledger).Get(ctx, "pool/m1")
			require.NoError(t, err)
			require.Equal(t, "pool-2", s.Member, "a claim without a member leaves it")
		})
	}
}
