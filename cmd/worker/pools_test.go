package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/robotsim"
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

// The binary serves a configured pool: its messages are delivered by its
// members in turn, and the member metric is exported.
func TestRunDeliversThroughPool(t *testing.T) {
	st := newTestStack(t)
	natsURL, js, topo, sim := st.natsURL, st.js, st.topo, st.sim
	for _, tok := range []string{"tok-a", "tok-b"} {
		require.NoError(t, sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: tok}))
	}
	path := testenv.WriteFile(t, "robots.yaml", `
prefix: `+topo.Prefix+`
robots:
  - name: oncall-a
    platform: dingtalk
    webhook: "`+sim.WebhookURL("tok-a")+`"
  - name: oncall-b
    platform: dingtalk
    webhook: "`+sim.WebhookURL("tok-b")+`"
pools:
  - name: oncall
    robots: [oncall-a, oncall-b]
`)
	in := start(t, []string{"--config", path, "--nats", natsURL, "--redis", testenv.RedisAddr(), "--restart-guard=false"}, nil)
	in.waitStatus("/readyz", http.StatusOK)
	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	for i := range 4 {
		_, err := pub.Publish(context.Background(), envelope.New("oncall", envelope.Message{Text: &envelope.Text{Content: fmt.Sprintf("alert %d", i)}}))
		require.NoError(t, err)
	}
	testenv.Eventually(t, 20*time.Second, func() bool {
		return len(sim.Received("tok-a"))+len(sim.Received("tok-b")) == 4
	}, "4 messages through the pool; logs:\n%s", in.stderr.String())
	require.Len(t, sim.Received("tok-a"), 2)
	require.Len(t, sim.Received("tok-b"), 2)
	_, metrics := in.get("/metrics")
	require.Contains(t, metrics, `botrelay_pool_member_state{pool="oncall",robot="oncall-a"} 1`)
	require.Contains(t, metrics, `botrelay_pool_member_state{pool="oncall",robot="oncall-b"} 1`)
}
