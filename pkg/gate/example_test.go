package gate_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/gate"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
)

// The claim and the limiter's decision in one round trip: a second
// message finds the robot's one slot taken, waits longer than HoldMax, and
// keeps its claim; a delivered message is not reserved for at all.
func ExampleRedis_ClaimReserve() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()})
	defer rdb.Close()
	prefix := "example:gate:" + testenv.Unique()
	rdb.Set(ctx, prefix+":epoch", "0", time.Minute) // a Redis state known to be complete
	led := ledger.NewRedis(rdb, prefix, time.Minute)
	lim, _ := limiter.NewRedis(rdb, limiter.WithPrefix(prefix))
	g := gate.New(led, lim)

	one := limiter.Limit{Max: 1, Window: time.Minute}
	for _, id := range []string{"alerts/1", "alerts/2"} {
		r, err := g.ClaimReserve(ctx, gate.Request{Key: id, Holder: "worker-1", Lease: 10 * time.Second,
			Robot: "alerts", Limit: one, HoldMax: 10 * time.Second})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(id, r.Claim, "reserved:", r.Reserved, "allowed:", r.Decision.Allowed, "released:", r.Released)
	}
	_ = led.MarkDelivered(ctx, "alerts/1", "worker-1", "")
	r, _ := g.ClaimReserve(ctx, gate.Request{Key: "alerts/1", Holder: "worker-1", Lease: 10 * time.Second, Robot: "alerts", Limit: one})
	fmt.Println("alerts/1 again:", r.Claim, "reserved:", r.Reserved)

	// The in-process ledger has no script: make the two calls.
	fmt.Println("memory ledger combinable:", gate.New(ledger.NewMemory(), lim) != nil)
	// Output:
	// alerts/1 claimed reserved: true allowed: true released: false
	// alerts/2 claimed reserved: true allowed: false released: false
	// alerts/1 again: delivered reserved: false
	// memory ledger combinable: false
}
