package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/gateway"
	"github.com/botrelay/botrelay/pkg/publisher"
)

// A message is checked, and split, by the size rules of its robot's
// platform: 3,000 bytes of text fit DingTalk but not WeCom's 2,048.
func TestSizeRulesPerPlatform(t *testing.T) {
	wecom := envelope.Limits{Platform: "wecom", Text: 2048, Markdown: 4000, Links: 8}
	size := func(robot string) envelope.Limits {
		if strings.HasPrefix(robot, "wecom-") {
			return wecom
		}
		return envelope.Limits{}
	}
	// cmd/gateway gives the publisher the same rules, which split by them.
	f := newFixture(t, testenv.NATSURL(t), gateway.Options{Size: size}, publisher.WithSizeRules(size))
	text := strings.Repeat("告警", 500) // 3,000 bytes

	r := f.post(t, "/v1/messages", `{"robot":"wecom-ops","text":"`+text+`"}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, string(r.body))
	_, problems := r.errBody(t)
	require.Len(t, problems, 1)
	require.Contains(t, problems[0], "message.text.content")
	require.Contains(t, problems[0], "wecom")
	require.Zero(t, f.count(t), "nothing stored")

	accepted(t, f.post(t, "/v1/messages", `{"robot":"ding-ops","text":"`+text+`"}`))
	require.EqualValues(t, 1, f.count(t))

	// A fan-out checks each robot under its own platform.
	r = f.post(t, "/v1/fanout", `{"robots":["ding-ops","wecom-ops"],"text":"`+text+`"}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, string(r.body))
	_, problems = r.errBody(t)
	require.Len(t, problems, 1)
	require.True(t, strings.HasPrefix(problems[0], `robots[1] "wecom-ops": `), problems[0])
	require.EqualValues(t, 1, f.count(t), "nothing more stored")

	// Split: parts cut by WeCom's rules.
	m := f.post(t, "/v1/messages", `{"robot":"wecom-ops","split":true,"text":"`+text+`"}`)
	require.Equal(t, http.StatusAccepted, m.status, string(m.body))
	require.EqualValues(t, 3, f.count(t), "two parts, each within 2,048 bytes")
	for seq := uint64(2); seq <= 3; seq++ {
		part := f.stored(t, "wecom-ops", seq)
		require.NoError(t, part.ValidateFor(wecom))
	}
}
