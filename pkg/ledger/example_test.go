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
