package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/robotsim"
)

// The worker binary takes a robot's digest policy from robots.yaml: five
// messages waiting for a robot with two posts a minute become one digest
// with the configured title, counted in the digest metrics.
func TestRunDigest(t *testing.T) {
	st := newTestStack(t)
	natsURL, js, topo, sim := st.natsURL, st.js, st.topo, st.sim
	require.NoError(t, sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: dingToken, Secret: dingSecret, Keywords: []string{"alert"}}))
	path := testenv.WriteFile(t, "robots.yaml", `
prefix: `+topo.Prefix+`
robots:
  - name: ding
    platform: dingtalk
    webhook: "`+sim.WebhookURL(dingToken)+`"
    secret: "`+dingSecret+`"
    keywords: [alert]
    limit: 2
    digest: {after: 1s, title: "alert digest"}
`)
	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	require.NoError(t, topo.Ensure(context.Background(), js))
	for i := range 5 {
		_, err = pub.Publish(context.Background(), envelope.New("ding", envelope.Message{Text: &envelope.Text{Content: fmt.Sprintf("alert %d: disk full", i)}}))
		require.NoError(t, err)
	}
	in := start(t, []string{"--config", path, "--nats", natsURL, "--redis", testenv.RedisAddr(),
		"--restart-guard=false", "--log-format", "json", "--name", "test-worker"}, nil)
	require.Equal(t, "ok\n", in.waitStatus("/healthz", http.StatusOK))
	testenv.Eventually(t, 20*time.Second, func() bool { return len(sim.Received(dingToken)) == 1 },
		"one digest posted; logs:\n%s", in.stderr.String())
	got := sim.Received(dingToken)[0]
	require.Equal(t, "markdown", got.MsgType)
	require.True(t, strings.HasPrefix(got.Title, "alert digest: 5 messages, "), got.Title)
	for i := range 5 {
		require.Contains(t, got.Content, fmt.Sprintf("alert %d: disk full", i))
	}
	testenv.Eventually(t, 5*time.Second, func() bool {
		_, metrics := in.get("/metrics")
		return strings.Contains(metrics, `botrelay_digests_total{robot="ding"} 1`) &&
			strings.Contains(metrics, `botrelay_digest_items_total{robot="ding"} 5`)
	}, "digest counters")
	require.NoError(t, in.stop())
	require.Len(t, sim.Received(dingToken), 1)
}
