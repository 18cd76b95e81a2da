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

	st, _ := l.RecordFailure(ctx, "msg-1", time.Now())
	fmt.Println("failures:", st.Failures)
	_ = l.MarkDelivered(ctx, "msg-1", "platform-id-42")
	st, _ = l.Get(ctx, "msg-1")
	fmt.Println("delivered:", st.Delivered, st.MessageID)
	// Output:
	// failures: 1
	// delivered: true platform-id-42
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
