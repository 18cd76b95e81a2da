package worker

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/ledger"
)

func TestUnexplained(t *testing.T) {
	tests := []struct {
		name      string
		delivered uint64
		st        ledger.State
		want      int
	}{
		{name: "first delivery", delivered: 1, want: 0},
		{name: "after two retries", delivered: 3, st: ledger.State{Failures: 2}, want: 0},
		{name: "after waits", delivered: 6, st: ledger.State{Failures: 1, Waits: 4}, want: 0},
		{name: "one crash among waits", delivered: 4, st: ledger.State{Waits: 2}, want: 1},
		{name: "ledger unavailable", delivered: 5, want: 4},
		{name: "ledger ahead of the server", delivered: 1, st: ledger.State{Failures: 3}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, unexplained(tt.delivered, tt.st))
		})
	}
}

func TestDeadLetterRetryDelay(t *testing.T) {
	tests := []struct {
		delivered uint64
		want      time.Duration
	}{
		{0, 5 * time.Second},
		{1, 5 * time.Second},
		{2, 10 * time.Second},
		{3, 20 * time.Second},
		{4, 40 * time.Second},
		{5, time.Minute},
		{100, time.Minute},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, deadLetterRetryDelay(tt.delivered), "delivered %d", tt.delivered)
	}
}

// A sweep consumer left behind (its worker killed mid-sweep) expires on
// the server: the oldest server botrelay supports (2.9, the machine's
// nats-server with BOTRELAY_TEST_SYSTEM_NATS_URL) keeps the threshold.
func TestSweepConsumerExpiresWhenIdle(t *testing.T) {
	urls := map[string]func() string{"embedded": func() string { return testenv.NATSURL(t) }}
	if u := os.Getenv("BOTRELAY_TEST_SYSTEM_NATS_URL"); u != "" {
		urls["system"] = func() string { return u }
	}
	for name, url := range urls {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			_, js := testenv.Connect(t, url())
			topo := testenv.Topology(t, js)
			require.NoError(t, topo.Ensure(ctx, js))
			for _, tt := range []struct {
				ackWait, want time.Duration
			}{
				{ackWait: 2 * time.Second, want: 30 * time.Second},
				{ackWait: time.Minute, want: 2 * time.Minute},
			} {
				cfg := sweepConsumerConfig(topo, "gone", tt.ackWait)
				require.Equal(t, topo.SweepConsumerName("gone"), cfg.Durable)
				c, err := js.CreateOrUpdateConsumer(ctx, topo.OutStream(), cfg)
				require.NoError(t, err)
				info, err := c.Info(ctx)
				require.NoError(t, err)
				require.Equal(t, tt.want, info.Config.InactiveThreshold)
				require.Equal(t, topo.SweepConsumerName("gone"), info.Config.Durable)
			}
		})
	}
}
