package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/ledger"
)

// A digest robot's row shows the messages folded and the last digest's
// size and time, as its workers recorded them; a digest robot that never
// folded says so; other robots show nothing of the kind.
func TestStatusDigests(t *testing.T) {
	t.Setenv(cli.EnvRedisAddr, "")
	ctx := context.Background()
	f := newFixture(t)
	rdb, _ := statusRedis(t, f, true)
	cfgPath := testenv.WriteFile(t, "robots.yaml", `prefix: `+f.topo.Prefix+`
robots:
  - name: alerts
    platform: dingtalk
    webhook: "https://oapi.dingtalk.com/robot/send?access_token=tok3n-a"
    keywords: ["告警"]
    digest: {after: 30s, title: "告警 digest"}
  - name: calm
    platform: dingtalk
    webhook: "https://oapi.dingtalk.com/robot/send?access_token=tok3n-c"
    digest: {after: 30s}
  - name: plain
    platform: dingtalk
    webhook: "https://oapi.dingtalk.com/robot/send?access_token=tok3n-p"
`)
	led := ledger.NewRedis(rdb, f.topo.Prefix, 0)
	at := time.Date(2026, 3, 1, 9, 15, 40, 0, time.UTC)
	require.NoError(t, led.NoteDigest(ctx, "alerts", 37, 4200, at.Add(-time.Minute)))
	require.NoError(t, led.NoteDigest(ctx, "alerts", 5, 900, at))

	r := f.run(t, "", "status", "--redis", testenv.RedisAddr(), "--config", cfgPath)
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "\n\ndigest alerts: 42 messages folded in 2 digests; last: 5 messages, 900 bytes, at 2026-03-01T09:15:40Z\n"+
		"digest calm: nothing folded yet\n\n")
	require.NotContains(t, r.stdout, "digest plain")

	r = f.run(t, "", "status", "--redis", testenv.RedisAddr(), "--config", cfgPath, "--json")
	require.NoError(t, r.err, r.stderr)
	got := map[string]robotStatus{}
	for _, l := range strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")[:3] {
		var rs robotStatus
		require.NoError(t, json.Unmarshal([]byte(l), &rs), l)
		got[rs.Robot] = rs
	}
	require.Equal(t, &digestStatus{Folded: 42, Digests: 2, LastItems: 5, LastBytes: 900, LastAt: "2026-03-01T09:15:40Z"}, got["alerts"].Digest)
	require.Equal(t, &digestStatus{}, got["calm"].Digest)
	require.Nil(t, got["plain"].Digest)
}
