package config_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/config"
)

// hookYAML is a robot with its own webhook (two robots may not share one).
func hookYAML(name string, extra ...string) string {
	s := "  - name: " + name + "\n    platform: dingtalk\n    webhook: \"https://oapi.dingtalk.com/robot/send?access_token=" + name + "tok\"\n"
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s
}

func TestCompare(t *testing.T) {
	const base = "robots:\n"
	tests := []struct {
		name     string
		old, new string
		env      map[string]string
		want     config.Diff
	}{
		{name: "same", old: base + hookYAML("a"), new: base + hookYAML("a"), want: config.Diff{}},
		{name: "added, removed, changed", old: base + hookYAML("a") + hookYAML("b") + hookYAML("c"),
			new:  base + hookYAML("c", "keywords: [x]") + hookYAML("d") + hookYAML("b"),
			want: config.Diff{Added: []string{"d"}, Changed: []string{"c"}, Removed: []string{"a"}}},
		{name: "webhook changed", old: base + hookYAML("a"),
			new:  base + "  - name: a\n    platform: dingtalk\n    webhook: \"https://oapi.dingtalk.com/robot/send?access_token=other\"\n",
			want: config.Diff{Changed: []string{"a"}}},
		{name: "secret from the environment changed", old: base + hookYAML("a", "secret_env: S"),
			new: base + hookYAML("a", "secret_env: T"), env: map[string]string{"S": "one", "T": "two"},
			want: config.Diff{Changed: []string{"a"}}},
		{name: "platform rate changes its robots", old: base + hookYAML("a") + "  - {name: p, platform: popo, webhook: 'https://h/open-apis/robots/v1/hook/x'}\n",
			new:  "platforms:\n  dingtalk: {limit: 10}\n" + base + hookYAML("a") + "  - {name: p, platform: popo, webhook: 'https://h/open-apis/robots/v1/hook/x'}\n",
			want: config.Diff{Changed: []string{"a"}}},
		{name: "settings read at start", old: base + hookYAML("a"),
			new: "prefix: other\nconcurrency: 4\nack_wait: 10s\nhold_max: 1s\nreplicas: 3\nretry: {max_attempts: 2}\n" +
				"streams: {out: {max_bytes: 1024}}\nplatforms:\n  popo:\n    errcodes: [{codes: [7], outcome: permanent}]\n" + base + hookYAML("a"),
			want: config.Diff{Restart: []string{"ack_wait", "concurrency", "hold_max", "platforms.popo.errcodes", "prefix", "replicas", "retry", "streams"}}},
		{name: "pools added, changed, removed; groups need no restart",
			old: base + hookYAML("a") + hookYAML("b") + hookYAML("c") + "pools:\n  - {name: p1, robots: [a, b]}\n  - {name: p2, robots: [c]}\n",
			new: base + hookYAML("a") + hookYAML("b") + hookYAML("c") + "pools:\n  - {name: p1, robots: [a]}\n  - {name: p3, robots: [c]}\n" +
				"groups:\n  - {name: g, members: [p1, b]}\n",
			want: config.Diff{Added: []string{"p3"}, Changed: []string{"p1"}, Removed: []string{"p2"}}},
		{name: "defaults written out are no change", old: base + hookYAML("a"),
			new:  "prefix: botrelay\nconcurrency: 32\nack_wait: 30s\nplatforms:\n  dingtalk: {limit: 20, window: 1m}\n" + base + hookYAML("a"),
			want: config.Diff{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, err := config.Parse([]byte(tt.old), env(tt.env))
			require.NoError(t, err)
			next, err := config.Parse([]byte(tt.new), env(tt.env))
			require.NoError(t, err)
			got := config.Compare(old, next)
			require.Equal(t, tt.want, normalize(got))
			require.Equal(t, tt.want.Empty(), got.Empty())
			require.True(t, config.Compare(next, next).Empty())
		})
	}
}

// normalize makes empty lists nil for comparison.
func normalize(d config.Diff) config.Diff {
	for _, s := range []*[]string{&d.Added, &d.Changed, &d.Removed, &d.Restart} {
		if len(*s) == 0 {
			*s = nil
		}
	}
	return d
}

// TestProblems: a broken file's error lists every problem, one each, in
// file order, without a credential; errors.Is still finds ErrInvalid.
func TestProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{name: "every validation problem", yaml: "concurrency: -1\nrobots:\n" + hookYAML("a", "limit: 99") + hookYAML("a", "secret_env: NOPE") +
			"  - name: b\n    platform: slack\n    webhook: \"ftp://x/" + token + "\"\n",
			want: []string{
				"concurrency: must be positive, got -1",
				`robots[0] "a": limit: 99 per 1m0s exceeds the dingtalk limit of 20 per 1m0s`,
				`robots[1] "a": name: duplicate of robots[0]`,
				`robots[1] "a": webhook: https://oapi.dingtalk.com/robot/send is the same dingtalk robot as robots[0] "a" (same credential): ` +
					"two names would give one platform robot two rate windows; configure it once",
				`robots[1] "a": secret_env: environment variable NOPE is not set`,
				`robots[2] "b": platform: not supported (want dingtalk, popo, feishu, wecom)`,
				`robots[2] "b": webhook: scheme must be https (or http for a local simulator)`,
			}},
		{name: "every unknown key", yaml: "robot: []\nrobots:\n" + hookYAML("a", "webhok: x", "limt: 3"),
			want: []string{
				"yaml: line 1: field robot not found in type config.Config",
				"yaml: line 6: field webhok not found in type config.Robot",
				"yaml: line 7: field limt not found in type config.Robot",
			}},
		{name: "not yaml", yaml: "robots: [\n", want: []string{"config: invalid: yaml: yaml: line 1: did not find expected node content"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml), env(nil))
			require.ErrorIs(t, err, config.ErrInvalid)
			got := config.Problems(err)
			require.Equal(t, tt.want, got)
			for _, p := range got {
				require.NotContains(t, p, token)
			}
			if len(tt.want) > 1 { // the message is unchanged: every problem on its own line
				require.Equal(t, "config: invalid:\n  "+strings.Join(tt.want, "\n  "), err.Error())
			}
		})
	}
	require.Nil(t, config.Problems(nil))
}
