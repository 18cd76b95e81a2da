package worker_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/gate"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/worker"
)

// redisTrips is a go-redis hook counting the round trips a client makes
// (one per command, one per pipeline), as the limiter benchmark counts
// them, and, of those, the script calls by the number of keys they name
// (the combined claim and decision names 3 or 4 keys, the ledger's own
// scripts 1, the limiter's 2 or 3), the handshakes of new connections
// (HELLO, CLIENT; the SETINFO pipeline), and any other command.
type redisTrips struct {
	all, other, handshakes atomic.Int64
	// scripts counts EVALSHA and EVAL by their number of keys.
	scripts [5]atomic.Int64
	// ops counts the ledger's own scripts by operation ("claim", "done",
	// "release", ...).
	mu  sync.Mutex
	ops map[string]int
}

func (h *redisTrips) opCounts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.ops)
}

func (h *redisTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *redisTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.all.Add(1)
		args := cmd.Args()
		name := strings.ToLower(cmd.Name())
		if (name == "evalsha" || name == "eval") && len(args) > 2 {
			if n, ok := args[2].(int); ok && n >= 0 && n < len(h.scripts) {
				h.scripts[n].Add(1)
				if n == 1 && len(args) > 5 {
					// A ledger script: ARGV[2] is the recording's op, the
					// claim's lease a number.
					op, ok := args[5].(string)
					if !ok {
						op = "claim"
					}
					h.mu.Lock()
					if h.ops == nil {
						h.ops = map[string]int{}
					}
					h.ops[op]++
					h.mu.Unlock()
				}
				return next(ctx, cmd)
			}
		}
		if name == "hello" || name == "client" {
			// A new connection's handshake, not a request of the path.
			h.handshakes.Add(1)
			return next(ctx, cmd)
		}
		h.other.Add(1)
		return next(ctx, cmd)
	}
}

func (h *redisTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.all.Add(1)
		handshake := len(cmds) > 0
		for _, c := range cmds {
			handshake = handshake && strings.EqualFold(c.Name(), "client")
		}
		if handshake {
			// A new connection's CLIENT SETINFO.
			h.handshakes.Add(1)
		} else {
			h.other.Add(1)
		}
		return next(ctx, cmds)
	}
}

func (h *redisTrips) reset() {
	h.all.Store(0)
	h.other.Store(0)
	h.handshakes.Store(0)
	for i := range h.scripts {
		h.scripts[i].Store(0)
	}
	h.mu.Lock()
	h.ops = nil
	h.mu.Unlock()
}

// countedStores returns a worker configuration change that puts the
// ledger and the limiter on Redis clients counted by the returned hook
// (the presence registry stays on the rig's own client: only the message
// path is counted). With split, the ledger and the limiter get a client
// each, so the worker makes the two calls (the path before the combined
// script, and the one of any ledger or limiter not sharing one Redis).
// The scripts are loaded first, so every call is one EVALSHA.
func countedStores(t testing.TB, r *rig, split bool) (*redisTrips, func(*worker.Config)) {
	t.Helper()
	ctx := context.Background()
	trips := &redisTrips{}
	newClient := func() *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: r.redisAddr()})
		t.Cleanup(func() { _ = c.Close() })
		c.AddHook(trips)
		return c
	}
	ledClient := newClient()
	limClient := ledClient
	if split {
		limClient = newClient()
	}
	led := ledger.NewRedis(ledClient, r.prefix, time.Hour)
	lim, err := limiter.NewRedis(limClient, limiter.WithPrefix(r.prefix))
	require.NoError(t, err)
	require.NoError(t, led.Load(ctx))
	require.NoError(t, lim.Load(ctx))
	g := gate.New(led, lim)
	require.Equal(t, !split, g != nil, "combined exactly when one client")
	if g != nil {
		require.NoError(t, g.Load(ctx))
	}
	trips.reset()
	return trips, func(c *worker.Config) { c.Ledger, c.Limiter = led, lim }
}

// TestRoundTripsPerDelivery counts, through the real worker path, the Redis
// round trips on the client of the ledger and the limiter while N messages
// are delivered at once (no limit reached): with both on one Redis, exactly
// 2N, N combined claims-and-decisions and N delivered marks, nothing else
// but the handshakes of the connections the client opens; with a client
// each (the two-call path), exactly 3N.
func TestRoundTripsPerDelivery(t *testing.T) {
	const robots, each = 3, 20
	tests := []struct {
		name  string
		split bool
		// want per message: combined scripts (3 or 4 keys), ledger
		// scripts (1 key), limiter decisions (3 keys on a split client:
		// the window, the cool-off, the epoch).
		combined, ledgerCalls, limiterCalls int
	}{
		{name: "ledger and limiter on one Redis", combined: 1, ledgerCalls: 1},
		{name: "a client each: two calls", split: true, ledgerCalls: 2, limiterCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "", robotsim.Config{})
			for i := range robots {
				r.addRobot(robotsim.PlatformPOPO, fmt.Sprintf("rt%d", i), "sec", "sec", nil, limiter.Limit{Max: 1000, Window: time.Minute, Margin: time.Second})
			}
			trips, mod := countedStores(t, r, tc.split)
			want := map[string][]string{}
			for i := range robots * each {
				robot := fmt.Sprintf("rt%d", i%robots)
				env := envelope.New(robot, text(fmt.Sprintf("m%03d", i)))
				want[robot] = append(want[robot], env.Message.PlainText())
				r.publish(env)
			}
			stop := r.startWorker(mod)
			for robot, contents := range want {
				r.waitExactly(robot, contents...)
			}
			stop()
			n := int64(robots * each)
			require.Equal(t, int(n), r.countEvents("delivered"))
			got := []int64{trips.scripts[3].Load() + trips.scripts[4].Load(), trips.scripts[1].Load(), trips.other.Load()}
			if tc.split {
				// The limiter's decision names 3 keys too: on split
				// clients no combined script runs.
				got[0] = 0
				require.Equal(t, int64(tc.limiterCalls)*n, trips.scripts[3].Load(), "limiter decisions")
			}
			require.Equal(t, []int64{int64(tc.combined) * n, int64(tc.ledgerCalls) * n, 0}, got, "combined scripts, ledger scripts, other commands")
			wantOps := map[string]int{"done": int(n)}
			if tc.split {
				wantOps["claim"] = int(n)
			}
			require.Equal(t, wantOps, trips.opCounts(), "the ledger's own scripts")
			total := trips.all.Load() - trips.handshakes.Load()
			require.Equal(t, int64(tc.combined+tc.ledgerCalls+tc.limiterCalls)*n, total, "round trips for %d messages, connection handshakes aside", n)
			t.Logf("%d messages: %d round trips (%.2f per message)", n, total, float64(total)/float64(n))
		})
	}
}

// TestRoundTripsWhileDenied counts the round trips while a robot's window
// denies and its lane waits (short waits, slept through holding the
// message): with the ledger and the limiter on one Redis, each pass is one
// combined script, which also gives the claim up for the wait, so no
// release is ever sent on its own; with two calls, each denial costs a
// claim, a decision and a release.
func TestRoundTripsWhileDenied(t *testing.T) {
	const n = 8
	for _, split := range []bool{false, true} {
		t.Run(fmt.Sprintf("split=%v", split), func(t *testing.T) {
			r := newRig(t, "", robotsim.Config{Window: 200 * time.Millisecond, Ban: time.Minute})
			r.addRobot(robotsim.PlatformPOPO, "slow", "sec", "sec", nil, limiter.Limit{Max: 2, Window: 200 * time.Millisecond, Margin: 500 * time.Millisecond})
			trips, mod := countedStores(t, r, split)
			envs := r.publishN("slow", "d", n)
			stop := r.startWorker(mod)
			p := r.waitExactly("slow", contents(envs)...)
			require.Empty(t, p.Refused)
			stop()
			require.Zero(t, r.sim.Stats("slow").Breaches)
			ops := trips.opCounts()
			passes := int(trips.scripts[3].Load() + trips.scripts[4].Load()) // combined scripts, or the limiter's decisions
			denials := passes - n
			require.Equal(t, n, ops["done"], "one delivered mark per message")
			require.Zero(t, trips.other.Load())
			// A request not written within its write budget (a loaded
			// machine) is released and tried again: a pass that is not a
			// denial, with a release of its own.
			notSent := r.countEvents("not_sent")
			denials -= notSent
			require.Positive(t, denials, "the window denied some passes")
			want := map[string]int{"done": n}
			if notSent > 0 {
				want["release"] = notSent
			}
			if split {
				want["claim"] = passes
				want["release"] += denials
				require.Equal(t, want, ops)
				// A claim and a decision per pass, a release per denial and
				// per unwritten request, a mark per message.
				require.Equal(t, int64(2*passes+denials+notSent+n), trips.all.Load()-trips.handshakes.Load())
			} else {
				require.Equal(t, want, ops, "the claims and the denials' releases all in the combined script")
				// A combined script per pass, a release per unwritten request, a mark per message.
				require.Equal(t, int64(passes+notSent+n), trips.all.Load()-trips.handshakes.Load())
			}
			t.Logf("%d messages, %d denials: %d round trips", n, denials, trips.all.Load()-trips.handshakes.Load())
		})
	}
}

// BenchmarkDeliveryThroughputRoundTrips is [BenchmarkDeliveryThroughput]
// (b.N messages over 50 robots, limits raised, one worker) reporting the
// Redis round trips per delivered message of the ledger's and limiter's
// client: "combined" with both on one Redis (one script for the claim and
// the decision, then the delivered mark), "two_calls" with a client each
// (claim, decision, mark: the path before).
func BenchmarkDeliveryThroughputRoundTrips(b *testing.B) {
	for _, split := range []bool{false, true} {
		name := "combined"
		if split {
			name = "two_calls"
		}
		b.Run(name, func(b *testing.B) {
			const robots = 50
			r := newRig(b, "", robotsim.Config{})
			for i := range robots {
				platform := robotsim.PlatformDingTalk
				if i%2 == 1 {
					platform = robotsim.PlatformPOPO
				}
				r.addRobot(platform, fmt.Sprintf("r%02d", i), "sec", "sec", nil, limiter.Limit{Max: 1_000_000, Window: time.Minute})
			}
			envs := make([]*envelope.Envelope, b.N)
			for i := range envs {
				envs[i] = envelope.New(fmt.Sprintf("r%02d", i%robots), text(fmt.Sprintf("message %d", i)))
			}
			_, err := r.pub.PublishAll(context.Background(), envs)
			require.NoError(b, err)
			trips, mod := countedStores(b, r, split)

			b.ResetTimer()
			start := time.Now()
			stop := r.startWorker(mod)
			total := func() int {
				n := 0
				for i := range robots {
					n += r.sim.Stats(fmt.Sprintf("r%02d", i)).Accepted
				}
				return n
			}
			testenv.Eventually(b, 10*time.Minute, func() bool { return total() >= b.N && r.outPending() == 0 }, "all delivered and acked")
			took := time.Since(start)
			b.StopTimer()
			stop()
			b.ReportMetric(float64(b.N)/took.Seconds(), "delivered/s")
			b.ReportMetric(float64(trips.all.Load()-trips.handshakes.Load())/float64(b.N), "roundtrips/msg")
		})
	}
}
