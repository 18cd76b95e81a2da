package limiter_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botrelay/botrelay/pkg/limiter"
)

func ExampleNewMemory() {
	ctx := context.Background()
	now := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	l := limiter.NewMemory(func() time.Time { return now })
	lim := limiter.Limit{Max: 2, Window: time.Minute}

	for range 3 {
		d, err := l.Reserve(ctx, "ops-alerts", lim)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("allowed=%v retry=%v\n", d.Allowed, d.RetryAfter)
		now = now.Add(10 * time.Second)
	}

	// The platform answered "send too fast": stop the robot for 10 minutes.
	if err := l.CoolOff(ctx, "ops-alerts", 10*time.Minute); err != nil {
		fmt.Println(err)
		return
	}
	d, _ := l.Reserve(ctx, "ops-alerts", lim)
	fmt.Printf("allowed=%v retry=%v cooling=%v\n", d.Allowed, d.RetryAfter, d.CoolingOff)
	// Output:
	// allowed=true retry=0s
	// allowed=true retry=0s
	// allowed=false retry=40s
	// allowed=false retry=10m0s cooling=true
}

func ExampleWaiter_Wait() {
	ctx := context.Background()
	now := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	l := limiter.NewMemory(func() time.Time { return now })
	lim := limiter.Limit{Max: 1, Window: 3 * time.Second}

	w := limiter.Waiter{
		MaxWait: time.Minute,
		Jitter:  func(time.Duration) time.Duration { return 0 },
		// A fake sleep moving the fake clock; leave nil for a real timer.
		Sleep: func(_ context.Context, d time.Duration) error {
			fmt.Println("sleep", d)
			now = now.Add(d)
			return nil
		},
	}
	for range 2 {
		d, err := w.Wait(ctx, l, "ops-alerts", lim)
		fmt.Println("allowed", d.Allowed, err)
	}
	// Output:
	// allowed true <nil>
	// sleep 3s
	// allowed true <nil>
}

func ExampleNewRedis() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	l, err := limiter.NewRedis(rdb, limiter.WithPrefix("botrelay"))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	d, err := l.Reserve(ctx, "ops-alerts", limiter.Limit{Max: 20, Window: time.Minute, Margin: 2 * time.Second})
	switch {
	case err != nil:
		// Fail closed: ErrUnavailable means "not allowed, retry soon".
		fmt.Println("retry soon:", err)
	case d.Allowed:
		fmt.Println("send now")
	default:
		fmt.Println("wait", d.RetryAfter)
	}
}

// A Limit with further windows: Feishu's 100 per minute and 5 per
// second, decided together.
func ExampleLimit_also() {
	clock := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	m := limiter.NewMemory(func() time.Time { return clock })
	feishu := limiter.Limit{Max: 100, Window: time.Minute, Also: []limiter.Window{{Max: 5, Window: time.Second}}}
	for range 6 {
		d, _ := m.Reserve(context.Background(), "lark", feishu)
		fmt.Println(d.Allowed, d.RetryAfter)
	}
	// Output:
	// true 0s
	// true 0s
	// true 0s
	// true 0s
	// true 0s
	// false 1s
}
