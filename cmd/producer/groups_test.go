package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
)

// groupsYAML has DingTalk robots sre-bj and sre-sh, a pool oncall of two
// WeCom robots, and groups all-sre (sre-bj, sre-sh, oncall) and one (sre-sh).
const groupsYAML = `robots:
  - {name: sre-bj, platform: dingtalk, webhook: "https://oapi.dingtalk.com/robot/send?access_token=bj"}
  - {name: sre-sh, platform: dingtalk, webhook: "https://oapi.dingtalk.com/robot/send?access_token=sh"}
  - {name: oncall-1, platform: wecom, webhook: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k1"}
  - {name: oncall-2, platform: wecom, webhook: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k2"}
pools:
  - {name: oncall, robots: [oncall-1, oncall-2]}
groups:
  - {name: all-sre, members: [sre-bj, sre-sh, oncall]}
  - {name: one, members: [sre-sh]}
`

// wantOutbound checks the stream holds exactly one copy per robot, in
// order, each on its subject with id "<id>.<robot>".
func wantOutbound(t *testing.T, f fixture, id string, robots ...string) []storedMsg {
	t.Helper()
	msgs := f.outbound(t)
	require.Len(t, msgs, len(robots))
	for i, rb := range robots {
		m := msgs[i]
		wantID := id + "." + rb
		require.Equal(t, f.topo.OutSubject(rb), m.subject)
		require.Equal(t, rb+"/"+wantID, m.msgID)
		require.Equal(t, rb, m.env.Robot)
		require.Equal(t, wantID, m.env.ID)
	}
	return msgs
}

func TestSendGroup(t *testing.T) {
	cfg := testenv.WriteFile(t, "robots.yaml", groupsYAML)
	f := newFixture(t)
	r := f.run(t, "", "send", "--config", cfg, "--robot", "all-sre", "--text", "db-3 failed over", "--id", "fo-1")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "sent id=fo-1.sre-bj robot=sre-bj seq=1\n"+
		"sent id=fo-1.sre-sh robot=sre-sh seq=2\n"+
		"sent id=fo-1.oncall robot=oncall seq=3\n", r.stdout)
	msgs := wantOutbound(t, f, "fo-1", "sre-bj", "sre-sh", "oncall")
	require.Equal(t, envelope.Message{Text: &envelope.Text{Content: "db-3 failed over"}}, msgs[2].env.Message)

	// Repeated: every copy a duplicate, nothing new stored.
	r = f.run(t, "", "send", "--config", cfg, "--robot", "all-sre", "--text", "db-3 failed over", "--id", "fo-1")
	require.NoError(t, r.err)
	require.Equal(t, 3, strings.Count(r.stdout, "duplicate id=fo-1."))
	require.Len(t, f.outbound(t), 3)
}

func TestSendGroupOfOneIsAFanOut(t *testing.T) {
	cfg := testenv.WriteFile(t, "robots.yaml", groupsYAML)
	f := newFixture(t)
	// A group of one member still derives the copy's id, and a robot named
	// directly and through a group gets one copy.
	r := f.run(t, "", "send", "--config", cfg, "--robot", "one", "--robot", "sre-sh,sre-bj", "--text", "x", "--id", "g1")
	require.NoError(t, r.err, r.stderr)
	wantOutbound(t, f, "g1", "sre-sh", "sre-bj")
}

func TestSendPoolIsATarget(t *testing.T) {
	cfg := testenv.WriteFile(t, "robots.yaml", groupsYAML)
	f := newFixture(t)
	content := numberedLines(30) // 3,000 bytes: fits DingTalk, not WeCom's 2,048
	r := f.run(t, "", "send", "--config", cfg, "--robot", "oncall", "--text", content)
	require.Error(t, r.err, "a pool has its robots' size rules")
	require.ErrorContains(t, r.err, "too large for wecom")
	r = f.run(t, "", "send", "--config", cfg, "--robot", "all-sre", "--text", content)
	require.ErrorContains(t, r.err, "too large for wecom", "checked under each member's rules")
	require.Empty(t, f.outbound(t), "nothing published")

	r = f.run(t, "", "send", "--config", cfg, "--robot", "oncall", "--text", "page", "--id", "p-1")
	require.NoError(t, r.err)
	require.Equal(t, "sent id=p-1 robot=oncall seq=1\n", r.stdout)
	msgs := f.outbound(t)
	require.Len(t, msgs, 1)
	require.Equal(t, f.topo.OutSubject("oncall"), msgs[0].subject)
	require.Equal(t, "oncall/p-1", msgs[0].msgID)
}

func TestSendUnknownTarget(t *testing.T) {
	cfg := testenv.WriteFile(t, "robots.yaml", groupsYAML)
	f := newFixture(t)
	r := f.run(t, "", "send", "--config", cfg, "--robot", "sre-bj,ghost", "--text", "x")
	require.Error(t, r.err)
	require.ErrorContains(t, r.err, `robot "ghost": not a robot, pool or group of --config `+cfg)
	require.Empty(t, f.outbound(t))
}

func TestSendFileGroupLine(t *testing.T) {
	cfg := testenv.WriteFile(t, "robots.yaml", groupsYAML)
	f := newFixture(t)
	in := `{"id":"n-1","robot":"all-sre","message":{"text":{"content":"a"}}}` + "\n" +
		`{"id":"n-2","robot":"sre-bj","message":{"text":{"content":"b"}}}` + "\n"
	r := f.run(t, in, "send", "--config", cfg, "-f", "-")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "line 1: published id=n-1.sre-bj robot=sre-bj seq=1\n"+
		"line 1: published id=n-1.sre-sh robot=sre-sh seq=2\n"+
		"line 1: published id=n-1.oncall robot=oncall seq=3\n"+
		"line 2: published id=n-2 robot=sre-bj seq=4\n"+
		"4 published, 0 failed\n", r.stdout)
}
