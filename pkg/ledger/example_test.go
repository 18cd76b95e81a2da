package ledger_test

import (
	"context"
	"fmt"
	"time"

	"github.com/botrelay/botrelay/pkg/ledger"
)

// A worker counts failed attempts across restarts and workers, and marks a
// message delivered so a redelivery is acked without posting it again.
func ExampleMemory() {
	ctx := context.Background()
	var l ledger.Ledger = ledger.NewMemory() // ledger.NewRedis(rdb, "botrelay", 0) in production

	// Immediately before each request the worker claims the message.
	c, _, _ := l.Claim(ctx, "ops-alerts/msg-1", "worker-a", 10*time.Second, false)
	fmt.Println("worker-a:", c)
	c, _, _ = l.Claim(ctx, "ops-alerts/msg-1", "worker-b", 10*time.Second, false)
	fmt.Println("worker-b:", c)
	st, _ := l.RecordFailure(ctx, "ops-alerts/msg-1", "worker-a", time.Now())
	fmt.Println("failures:", st.Failures)
	_, _, _ = l.Claim(ctx, "ops-alerts/msg-1", "worker-b", 10*time.Second, false)
	_ = l.MarkDelivered(ctx, "ops-alerts/msg-1", "worker-b", "platform-id-42")
	c, st, _ = l.Claim(ctx, "ops-alerts/msg-1", "worker-a", 10*time.Second, false)
	fmt.Println("redelivered:", c, st.MessageID)
	// Output:
	// worker-a: claimed
	// worker-b: held
	// failures: 1
	// redelivered: delivered platform-id-42
}

// Workers announce the robots they serve; a robot announced by nobody
// within the ttl is configured on no running worker.
func ExampleMemory_Served() {
	ctx := context.Background()
	var p ledger.Presence = ledger.NewMemory() // ledger.NewRedis(rdb, "botrelay", 0) in production

	_ = p.Announce(ctx, []string{"ops-alerts"}, 90*time.Second)
	served, _ := p.Served(ctx, "ops-alerts")
	fmt.Println("ops-alerts served:", served)
	served, _ = p.Served(ctx, "retired")
	fmt.Println("retired served:", served)
	// Output:
	// ops-alerts served: true
	// retired served: false
}
