package fleet_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/fleet"
	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/stream"
)

// members returns the view of a registry after announcements.
func members(t *testing.T, as ...ledger.Announcement) *ledger.Members {
	t.Helper()
	p := ledger.NewMemory()
	for _, a := range as {
		require.NoError(t, p.Announce(context.Background(), a))
	}
	m, err := p.Members(context.Background())
	require.NoError(t, err)
	return m
}

func TestDiagnose(t *testing.T) {
	no, yes := false, true
	lim := limiter.Limit{Max: 2, Window: time.Minute, Margin: 5 * time.Second}
	serving := members(t, ledger.Announcement{Worker: "w1", Robots: []string{"ops"}, TTL: time.Minute})
	nobody := members(t, ledger.Announcement{Worker: "w1", Robots: []string{"dev"}, TTL: time.Minute})
	limited := members(t, ledger.Announcement{Worker: "w1", Robots: []string{"dev"}, TTL: time.Minute},
		ledger.Announcement{Worker: "w2", Robots: []string{"ops"}, TTL: time.Minute, Unserved: map[string]string{"ops": "maximum consumers limit reached"}})
	tests := []struct {
		name string
		in   fleet.Input
		want []string
	}{
		{name: "all well", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 1, Consumer: true, Pending: 1}}, want: nil},
		{name: "no consumer, age unknown", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 3}},
			want: []string{"3 messages waiting and no consumer robot_ops yet: normal for up to 30s (workers create it when work arrives); if it lasts, is the robot configured on a running worker?"}},
		{name: "no consumer, fresh backlog (lazy consumer)", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 3}, OldestAge: 5 * time.Second}, want: nil},
		{name: "no consumer, backlog older than the scan", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 3}, OldestAge: 119500 * time.Millisecond},
			want: []string{"3 messages waiting, the oldest for 2m0s, and no worker took them up (no consumer robot_ops; workers create it within 30s of work arriving): are the workers running? see their logs"}},
		{name: "no consumer, within a longer scan", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 3}, OldestAge: 2 * time.Minute, ScanInterval: 3 * time.Minute}, want: nil},
		{name: "no consumer, served by a live worker", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 3}, Presence: serving}, want: nil},
		{name: "no consumer, served, but stale", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 1}, Presence: serving, OldestAge: time.Hour},
			want: []string{"1 message waiting, the oldest for 1h0m0s, and no worker took them up (no consumer robot_ops; workers create it within 30s of work arriving): are the workers running? see their logs"}},
		{name: "configured on no live worker", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 2, Consumer: true}, Presence: nobody},
			want: []string{"2 messages waiting, and no running worker has this robot configured: is it in a worker's configuration, and are the workers running?"}},
		{name: "unserved: a limit was reached", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 2}, Presence: limited},
			want: []string{"not served: worker w2 reached a limit creating its consumer (maximum consumers limit reached): raise the limit; its log names the robots, botrelay_unserved_robots counts them"}},
		{name: "unserved, nothing waiting", in: fleet.Input{Presence: limited},
			want: []string{"not served: worker w2 reached a limit creating its consumer (maximum consumers limit reached): raise the limit; its log names the robots, botrelay_unserved_robots counts them"}},
		{name: "nobody pulling", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 1, Consumer: true}},
			want: []string{"no worker is pulling (is the robot configured on a worker? are the workers running?)"}},
		{name: "nobody pulling yet (lazy lane)", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 1, Consumer: true}, OldestAge: time.Second}, want: nil},
		{name: "nobody pulling for long", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 1, Consumer: true}, OldestAge: time.Minute},
			want: []string{"no worker is pulling (is the robot configured on a worker? are the workers running?)"}},
		{name: "not configured", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 1, Consumer: true, Waiting: 1}, Configured: &no, ConfigPath: "robots.yaml"},
			want: []string{"not in robots.yaml: workers using it dead-letter this robot's messages as unknown"}},
		{name: "configured and idle", in: fleet.Input{Configured: &yes}, want: nil},
		{name: "cool-off and window", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 5, Consumer: true, Pending: 1},
			Limiter: &fleet.Limiter{State: limiter.State{CoolOffLeft: 1500 * time.Millisecond, InWindow: 2, NextSlot: 2 * time.Second}, Limit: lim, HasLimit: true}},
			want: []string{"cooling off for 2s (the platform throttled it)"}},
		{name: "window full", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 5, Consumer: true, Pending: 1},
			Limiter: &fleet.Limiter{State: limiter.State{InWindow: 2, NextSlot: 30 * time.Second}, Limit: lim, HasLimit: true}},
			want: []string{"rate limit: 2/2 sent in the last 1m5s; next slot in 30s"}},
		{name: "dead letters", in: fleet.Input{Queue: stream.RobotQueue{DeadLetters: 1}},
			want: []string{"1 dead letter: producer dlq list --robot ops"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Topology, tt.in.Robot = stream.Topology{}, "ops"
			require.Equal(t, tt.want, fleet.Diagnose(tt.in))
		})
	}
}

// OldestAge reads the age of a robot's oldest queued message from the
// stream: the first one, not the last; 0 for a robot with none.
func TestOldestAge(t *testing.T) {
	ctx := context.Background()
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(ctx, js))
	_, err := js.Publish(ctx, topo.OutSubject("other"), []byte("x"))
	require.NoError(t, err)
	_, err = js.Publish(ctx, topo.OutSubject("ops"), []byte("first"))
	require.NoError(t, err)
	published := time.Now()
	_, err = js.Publish(ctx, topo.OutSubject("ops"), []byte("second"))
	require.NoError(t, err)

	later := published.Add(time.Minute)
	age, err := fleet.OldestAge(ctx, js, topo, "ops", later)
	require.NoError(t, err)
	require.InDelta(t, time.Minute.Seconds(), age.Seconds(), 1, "the first message's age")
	age, err = fleet.OldestAge(ctx, js, topo, "idle", later)
	require.NoError(t, err)
	require.Zero(t, age)
}
