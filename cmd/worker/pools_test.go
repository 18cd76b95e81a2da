package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/worker"
)

func TestPoolRobots(t *testing.T) {
	cfg := &config.Config{
		Robots: []config.Robot{{Name: "oncall-1", Platform: "dingtalk"}, {Name: "oncall-2", Platform: "dingtalk"}, {Name: "p1", Platform: "popo"}},
		Pools:  []config.Pool{{Name: "oncall", Robots: []string{"oncall-1", "oncall-2"}}, {Name: "solo", Robots: []string{"p1"}}},
	}
	got := poolRobots(cfg)
	require.Equal(t, []worker.Robot{
		{Robot: delivery.Robot{Name: "oncall", Platform: "dingtalk"}, Pool: []string{"oncall-1", "oncall-2"}},
		{Robot: delivery.Robot{Name: "solo", Platform: "popo"}, Pool: []string{"p1"}},
	}, got)
	cfg.Pools[0].Robots[0] = "changed"
	require.Equal(t, "oncall-1", got[0].Pool[0], "the members are copied")
	require.Empty(t, poolRobots(&config.Config{}))
}
