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

// Workers announce themselves and their robot sets; a robot in no live
// worker's set is configured on no running worker, and each robot is
// shared among the workers that serve it.
func ExampleMemory_Members() {
	ctx := context.Background()
	var p ledger.Presence = ledger.NewMemory() // ledger.NewRedis(rdb, "botrelay", 0) in production

	_ = p.Announce(ctx, ledger.Announcement{Worker: "w1", Robots: []string{"ops-alerts", "sre"}, TTL: 90 * time.Second})
	_ = p.Announce(ctx, ledger.Announcement{Worker: "w2", Robots: []string{"sre"}, TTL: 90 * time.Second,
		Unserved: map[string]string{"sre": "maximum consumers limit reached"}})
	m, _ := p.Members(ctx)
	fmt.Println("ops-alerts served:", m.Served("ops-alerts"))
	fmt.Println("retired served:", m.Served("retired"))
	fmt.Println("sre served by:", m.ServedBy("sre"))
	w, why, _ := m.Unserved("sre")
	fmt.Println("sre unserved on", w+":", why)
	// Output:
	// ops-alerts served: true
	// retired served: false
	// sre served by: [w1 w2]
	// sre unserved on w2: maximum consumers limit reached
}

// On a Redis Cluster a message's entry carries its robot's limiter key as
// hash tag, so it lives in the slot of the robot's window; a reload
// replaces the map.
func ExampleRedis_WithHashTag() {
	tags := ledger.NewRobotTags(map[string]string{"alerts": "dingtalk:3f9a"})
	l := ledger.NewRedis(nil, "botrelay", 0).WithHashTag(tags.Tag)
	fmt.Println(l.Key("alerts/msg-1"))
	fmt.Println(l.Key("other/msg-1"))
	// Output:
	// botrelay:l:{dingtalk:3f9a}alerts/msg-1
	// botrelay:l:{other/msg-1}
}
