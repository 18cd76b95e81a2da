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
)

// A pool's members are shown with their limiter state: the worker sends
// each message to the member whose next slot is earliest.
func TestStatusPools(t *testing.T) {
	t.Setenv(cli.EnvRedisAddr, "")
	ctx := context.Background()
	f := newFixture(t)
	cfgPath := testenv.WriteFile(t, "robots.yaml", `prefix: `+f.topo.Prefix+`
robots:
  - name: oncall-1
    platform: dingtalk
    webhook: "https://oapi.dingtalk.com/robot/send?access_token=tok3n-1"
  - name: oncall-2
    platform: dingtalk
    webhook: "https://oapi.dingtalk.com/robot/send?access_token=tok3n-2"
    limit: 2
pools:
  - name: oncall
    robots: [oncall-1, oncall-2]
`)
	_, lim := statusRedis(t, f, true)
	key1, _ := statusKey(t, cfgPath, "oncall-1")
	require.NoError(t, lim.CoolOff(ctx, key1, 5*time.Minute))
	key2, l2 := statusKey(t, cfgPath, "oncall-2")
	for range 2 {
		d, err := lim.Reserve(ctx, key2, l2)
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
	require.NoError(t, f.run(t, "", "send", "--robot", "oncall", "--text", "disk full").err)

	r := f.run(t, "", "status", "--redis", testenv.RedisAddr(), "--config", cfgPath)
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, []string{"oncall", "oncall-1", "oncall-2"}, robotOrder(t, r.stdout))
	st := parseStatus(t, r.stdout)
	require.Equal(t, "1", st.rows["oncall"]["BACKLOG"])
	for _, d := range st.diagnoses["oncall"] {
		require.NotContains(t, d, "not in", "a pool is configured")
	}
	sections := strings.Split(r.stdout, "\n\n")
	require.Len(t, sections, 4, "robots, diagnoses, pools, streams:\n%s", r.stdout)
	lines := strings.Split(strings.TrimRight(sections[2], "\n"), "\n")
	require.Len(t, lines, 3)
	require.Equal(t, []string{"POOL", "MEMBER", "COOL-OFF", "IN-WINDOW", "NEXT-SLOT"}, strings.Fields(lines[0]))
	m1, m2 := strings.Fields(lines[1]), strings.Fields(lines[2])
	require.Equal(t, []string{"oncall", "oncall-1"}, m1[:2])
	require.Regexp(t, `^(5m0s|4m5\ds)$`, m1[2])
	require.Equal(t, "0/20", m1[3])
	require.Equal(t, m1[2], m1[4], "the cool-off holds its next slot")
	require.Equal(t, []string{"oncall", "oncall-2", "-", "2/2"}, m2[:4])
	require.Regexp(t, `^(1m[0-5]s|5\ds)$`, m2[4])
	require.NotContains(t, r.stdout+r.stderr, "tok3n")

	r = f.run(t, "", "status", "--redis", testenv.RedisAddr(), "--config", cfgPath, "--json", "--robot", "oncall")
	require.NoError(t, r.err, r.stderr)
	var rs robotStatus
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(r.stdout, "\n", 2)[0]), &rs))
	require.Equal(t, "oncall", rs.Robot)
	require.Len(t, rs.Members, 2)
	require.Equal(t, "oncall-1", rs.Members[0].Robot)
	require.Greater(t, *rs.Members[0].Limiter.NextSlotMS, int64(4*time.Minute/time.Millisecond))
	require.Equal(t, 2, *rs.Members[1].Limiter.InWindow)
	require.Equal(t, 2, rs.Members[1].Limiter.Max)
}
