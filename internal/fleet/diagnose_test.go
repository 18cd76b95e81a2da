package fleet_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/fleet"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/stream"
)

func TestDiagnose(t *testing.T) {
	no, yes := false, true
	lim := limiter.Limit{Max: 2, Window: time.Minute, Margin: 5 * time.Second}
	tests := []struct {
		name string
		in   fleet.Input
		want []string
	}{
		{name: "all well", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 1, Consumer: true, Pending: 1}}, want: nil},
		{name: "never served", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 3}},
			want: []string{"3 messages waiting, and no worker has ever served this robot (no consumer robot_ops): is it configured on a worker, and are the workers running?"}},
		{name: "nobody pulling", in: fleet.Input{Queue: stream.RobotQueue{Backlog: 1, Consumer: true}},
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
