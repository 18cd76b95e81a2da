package config_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/delivery"
)

// fleetRobot is a robot of platform (dingtalk or popo) with a webhook of
// its own (two robots on one credential are an error).
func fleetRobot(name, platform string, extra ...string) string {
	hook := "https://oapi.dingtalk.com/robot/send?access_token=" + name + token
	if platform == config.POPO {
		hook = "https://open.popo.netease.com/open-apis/robots/v1/hook/" + name + hookID
	}
	s := "  - {name: " + name + ", platform: " + platform + ", webhook: \"" + hook + "\""
	for _, e := range extra {
		s += ", " + e
	}
	return s + "}\n"
}

// fleet is sre-bj, sre-sh (dingtalk), oncall-1..3 (dingtalk), pop (popo).
var fleet = "robots:\n" + fleetRobot("sre-bj", config.DingTalk, `keywords: ["告警"]`) + fleetRobot("sre-sh", config.DingTalk) +
	fleetRobot("oncall-1", config.DingTalk) + fleetRobot("oncall-2", config.DingTalk) + fleetRobot("oncall-3", config.DingTalk) +
	fleetRobot("pop", config.POPO) +
	"apps:\n  - {name: helpdesk, platform: dingtalk, app_secret: s}\n"

func TestPoolsAndGroups(t *testing.T) {
	c, err := config.Parse([]byte(fleet+
		"pools:\n  - {name: oncall, robots: [oncall-1, oncall-2, oncall-3]}\n  - {name: solo, robots: [pop]}\n"+
		"groups:\n  - {name: all-sre, members: [sre-bj, sre-sh, oncall]}\n  - {name: mixed, members: [solo, sre-sh]}\n"), noEnv)
	require.NoError(t, err)

	p, ok := c.PoolOf("oncall")
	require.True(t, ok)
	require.Equal(t, []string{"oncall-1", "oncall-2", "oncall-3"}, p.Robots)
	_, ok = c.PoolOf("sre-bj")
	require.False(t, ok, "a robot is not a pool")
	p, ok = c.MemberOf("oncall-2")
	require.True(t, ok)
	require.Equal(t, "oncall", p.Name)
	_, ok = c.MemberOf("sre-bj")
	require.False(t, ok)

	tests := []struct {
		target   string
		want     []string
		platform string // "" for no single platform
		keywords []string
	}{
		{target: "all-sre", want: []string{"sre-bj", "sre-sh", "oncall"}},
		{target: "mixed", want: []string{"solo", "sre-sh"}},
		{target: "sre-bj", want: []string{"sre-bj"}, platform: config.DingTalk, keywords: []string{"告警"}},
		{target: "oncall", want: []string{"oncall"}, platform: config.DingTalk},
		{target: "solo", want: []string{"solo"}, platform: config.POPO},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			got, err := c.Expand(tt.target)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			platform, ok := c.TargetPlatform(tt.target)
			require.Equal(t, tt.platform, platform)
			require.Equal(t, tt.platform != "", ok)
			if ok {
				d, _ := delivery.LookupPlatform(platform)
				require.Equal(t, d.Size, c.TargetSize(tt.target))
			}
			require.Equal(t, tt.keywords, c.TargetKeywords(tt.target))
			members, isGroup := c.GroupMembers(tt.target)
			require.Equal(t, platform == "", isGroup)
			if isGroup {
				require.Equal(t, tt.want, members)
			}
		})
	}
	popo, _ := delivery.LookupPlatform(config.POPO)
	require.Equal(t, popo.Size, c.TargetSize("solo"), "a pool has its robots' size rules")
	_, err = c.Expand("nobody")
	require.ErrorIs(t, err, config.ErrUnknownTarget)
	require.ErrorContains(t, err, `"nobody" is not a robot, pool or group`)
	_, err = c.Expand("helpdesk")
	require.ErrorIs(t, err, config.ErrUnknownTarget, "an app is not a target of Expand")
	require.Equal(t, []string{"sre-bj", "sre-sh", "oncall-1", "oncall-2", "oncall-3", "pop", "oncall", "solo"}, c.Targets())
}

func TestPoolsAndGroupsInvalid(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every one must be in the error
	}{
		{name: "mixed platforms", yaml: "pools:\n  - {name: p, robots: [oncall-1, pop]}\n",
			want: []string{`pools[0] "p": robots[1] "pop": platform popo differs from dingtalk of "oncall-1" (a pool's robots are of one platform)`}},
		{name: "unknown pool robot", yaml: "pools:\n  - {name: p, robots: [oncall-1, ghost]}\n",
			want: []string{`pools[0] "p": robots[1] "ghost": not a configured robot`}},
		{name: "app in a pool", yaml: "pools:\n  - {name: p, robots: [helpdesk]}\n",
			want: []string{`pools[0] "p": robots[0] "helpdesk": an app, not a robot`}},
		{name: "pool in a pool", yaml: "pools:\n  - {name: p, robots: [oncall-1]}\n  - {name: q, robots: [p]}\n",
			want: []string{`pools[1] "q": robots[0] "p": a pool, not a robot (pools do not nest)`}},
		{name: "robot in two pools", yaml: "pools:\n  - {name: p, robots: [oncall-1, oncall-2]}\n  - {name: q, robots: [oncall-3, oncall-2]}\n",
			want: []string{`pools[1] "q": robots[1] "oncall-2": already a robot of pools[0] "p" (a robot is in at most one pool)`}},
		{name: "empty pool", yaml: "pools:\n  - {name: p, robots: []}\n",
			want: []string{`pools[0] "p": robots: at least one robot required`}},
		{name: "duplicate pool robot", yaml: "pools:\n  - {name: p, robots: [oncall-1, oncall-1]}\n",
			want: []string{`pools[0] "p": robots[1] "oncall-1": duplicate of robots[0]`}},
		{name: "pool without name", yaml: "pools:\n  - {robots: [oncall-1]}\n",
			want: []string{`pools[0]: name: required`}},
		{name: "pool bad name", yaml: "pools:\n  - {name: \"on call\", robots: [oncall-1]}\n",
			want: []string{`pools[0]: name: must be 1-64 characters of [A-Za-z0-9_-]`}},
		{name: "pool named as a robot", yaml: "pools:\n  - {name: sre-bj, robots: [oncall-1]}\n",
			want: []string{`pools[0]: name: also the name of robots[0] (robots, pools, groups and apps share one namespace)`}},
		{name: "pool named as an app", yaml: "pools:\n  - {name: helpdesk, robots: [oncall-1]}\n",
			want: []string{`pools[0]: name: also the name of apps[0]`}},
		{name: "two pools of one name", yaml: "pools:\n  - {name: p, robots: [oncall-1]}\n  - {name: p, robots: [oncall-2]}\n",
			want: []string{`pools[1]: name: also the name of pools[0]`}},
		{name: "group named as a pool", yaml: "pools:\n  - {name: p, robots: [oncall-1]}\ngroups:\n  - {name: p, members: [sre-bj]}\n",
			want: []string{`groups[0]: name: also the name of pools[0]`}},
		{name: "group named as a robot", yaml: "groups:\n  - {name: pop, members: [sre-bj]}\n",
			want: []string{`groups[0]: name: also the name of robots[5]`}},
		{name: "two groups of one name", yaml: "groups:\n  - {name: g, members: [sre-bj]}\n  - {name: g, members: [sre-sh]}\n",
			want: []string{`groups[1]: name: also the name of groups[0]`}},
		{name: "group without name", yaml: "groups:\n  - {members: [sre-bj]}\n",
			want: []string{`groups[0]: name: required`}},
		{name: "unknown group member", yaml: "groups:\n  - {name: g, members: [sre-bj, ghost]}\n",
			want: []string{`groups[0] "g": members[1] "ghost": not a configured robot`}},
		{name: "group in a group", yaml: "groups:\n  - {name: g, members: [sre-bj]}\n  - {name: h, members: [g, sre-sh]}\n",
			want: []string{`groups[1] "h": members[0] "g": a group (groups do not nest: list its members instead)`}},
		{name: "group of itself", yaml: "groups:\n  - {name: g, members: [g]}\n",
			want: []string{`groups[0] "g": members[0] "g": a group (groups do not nest`}},
		{name: "duplicate group member", yaml: "groups:\n  - {name: g, members: [sre-bj, sre-sh, sre-bj]}\n",
			want: []string{`groups[0] "g": members[2] "sre-bj": duplicate of members[0]`}},
		{name: "empty group", yaml: "groups:\n  - {name: g}\n",
			want: []string{`groups[0] "g": members: at least one robot or pool required`}},
		{name: "pool and its robot", yaml: "pools:\n  - {name: oncall, robots: [oncall-1, oncall-2]}\ngroups:\n  - {name: g, members: [oncall, oncall-2]}\n",
			want: []string{`groups[0] "g": members[1] "oncall-2" is a robot of pool "oncall", also members[0] (its chat group would get each message twice)`}},
		{name: "every problem", yaml: "pools:\n  - {name: p, robots: [ghost, pop, oncall-1]}\ngroups:\n  - {name: g, members: [nobody]}\n",
			want: []string{`robots[0] "ghost": not a configured robot`, `robots[2] "oncall-1": platform dingtalk differs from popo of "pop"`,
				`groups[0] "g": members[0] "nobody": not a configured robot`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(fleet+tt.yaml), noEnv)
			require.Error(t, err)
			require.Nil(t, c)
			require.ErrorIs(t, err, config.ErrInvalid)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			require.NotContains(t, err.Error(), token, "the error leaks a credential")
			require.NotContains(t, err.Error(), hookID, "the error leaks a credential")
			// Exactly the problems wanted: one line each.
			require.Len(t, strings.Split(err.Error(), "\n  ")[1:], len(tt.want), err.Error())
		})
	}
}
