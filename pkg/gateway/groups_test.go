package gateway_test

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/gateway"
	"github.com/botrelay/botrelay/pkg/publisher"
)

// members is the test's groups: all-sre (two robots and the pool oncall)
// and db (sre-sh).
func members(name string) ([]string, bool) {
	switch name {
	case "all-sre":
		return []string{"sre-bj", "sre-sh", "oncall"}, true
	case "db":
		return []string{"sre-sh"}, true
	}
	return nil, false
}

// groupGateway accepts the robots sre-bj, sre-sh, ops, the pool oncall
// (WeCom size rules) and the groups of members.
func groupGateway(t *testing.T, opts gateway.Options) fixture {
	t.Helper()
	wecom, _ := delivery.LookupPlatform(delivery.PlatformWeCom)
	size := func(target string) envelope.Limits {
		if target == "oncall" {
			return wecom.Size
		}
		return envelope.Limits{}
	}
	opts.Robots, opts.Size = []string{"sre-bj", "sre-sh", "ops", "oncall"}, size
	return newFixture(t, testenv.NATSURL(t), opts, publisher.WithGroups(members), publisher.WithSizeRules(size))
}

func TestMessageToGroup(t *testing.T) {
	f := groupGateway(t, gateway.Options{})
	body := `{"robot":"all-sre","markdown":{"title":"Failover","text":"db-3 is primary"},"labels":{"db":"3"}}`
	want := gateway.MultiResponse{ID: "fo-3", Stored: 3, Results: []gateway.Result{
		{ID: "fo-3.sre-bj", Robot: "sre-bj", Sequence: 1},
		{ID: "fo-3.sre-sh", Robot: "sre-sh", Sequence: 2},
		{ID: "fo-3.oncall", Robot: "oncall", Sequence: 3},
	}}
	m := multi(t, f.post(t, "/v1/messages", body, "Idempotency-Key", "fo-3"), http.StatusAccepted)
	require.Equal(t, want, m)
	for _, res := range m.Results {
		require.Equal(t, &envelope.Envelope{V: 1, ID: res.ID, Robot: res.Robot, CreatedAt: now,
			Message: envelope.Message{Markdown: &envelope.Markdown{Title: "Failover", Text: "db-3 is primary"}},
			Labels:  map[string]string{"db": "3"}}, f.stored(t, res.Robot, res.Sequence))
	}
	// A retry: every copy a duplicate.
	m = multi(t, f.post(t, "/v1/messages", body, "Idempotency-Key", "fo-3"), http.StatusAccepted)
	for i := range want.Results {
		want.Results[i].Duplicate = true
	}
	require.Equal(t, want, m)
	require.EqualValues(t, 3, f.count(t))

	// A group of one member is still a fan-out: the copy's id names it.
	m = multi(t, f.post(t, "/v1/messages", `{"robot":"db","text":"x"}`, "Idempotency-Key", "one"), http.StatusAccepted)
	require.Equal(t, []gateway.Result{{ID: "one.sre-sh", Robot: "sre-sh", Sequence: 4}}, m.Results)

	// A pool is a robot: one message under its own id.
	res := accepted(t, f.post(t, "/v1/messages", `{"robot":"oncall","text":"page"}`, "Idempotency-Key", "p-1"))
	require.Equal(t, gateway.Result{ID: "p-1", Robot: "oncall", Sequence: 5}, res)
	require.EqualValues(t, 5, f.count(t))
}

func TestFanOutWithGroups(t *testing.T) {
	f := groupGateway(t, gateway.Options{})
	// sre-sh comes through db, then all-sre and by name: one copy, at its
	// first place.
	body := `{"robots":["ops","db","all-sre","sre-sh"],"text":"maintenance at 22:00"}`
	m := multi(t, f.post(t, "/v1/fanout", body, "Idempotency-Key", "mt"), http.StatusAccepted)
	require.Equal(t, gateway.MultiResponse{ID: "mt", Stored: 4, Results: []gateway.Result{
		{ID: "mt.ops", Robot: "ops", Sequence: 1},
		{ID: "mt.sre-sh", Robot: "sre-sh", Sequence: 2},
		{ID: "mt.sre-bj", Robot: "sre-bj", Sequence: 3},
		{ID: "mt.oncall", Robot: "oncall", Sequence: 4},
	}}, m)
	for _, res := range m.Results {
		require.Equal(t, res.ID, f.stored(t, res.Robot, res.Sequence).ID)
	}
}

func TestGroupRefusals(t *testing.T) {
	f := groupGateway(t, gateway.Options{})
	long := `"` + strings.Repeat("x", 3000) + `"` // fits DingTalk, not the WeCom pool
	tests := []struct {
		name, path, body string
		want             []string
	}{
		{name: "member too large for its platform", path: "/v1/messages", body: `{"robot":"all-sre","text":` + long + `}`,
			want: []string{`robot "all-sre": member "oncall": message.text.content: `}},
		{name: "pool too large", path: "/v1/messages", body: `{"robot":"oncall","text":` + long + `}`,
			want: []string{`message.text.content: `}},
		{name: "group in a batch", path: "/v1/messages:batch", body: `{"robot":"all-sre","text":"x"}`,
			want: []string{`line 1: robot: "all-sre" is a group: send it with POST /v1/messages or POST /v1/fanout`}},
		{name: "unknown next to a group", path: "/v1/fanout", body: `{"robots":["all-sre","ghost"],"text":"x"}`,
			want: []string{`robots[1]: unknown robot "ghost"`}},
		{name: "robots with a group robot", path: "/v1/messages", body: `{"robot":"all-sre","robots":["ops"],"text":"x"}`,
			want: []string{`robots: only for POST /v1/fanout: set robot`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.post(t, tt.path, tt.body)
			require.Equal(t, http.StatusUnprocessableEntity, r.status, "body %s", r.body)
			_, problems := r.errBody(t)
			require.Len(t, problems, len(tt.want), "%q", problems)
			for i, w := range tt.want {
				require.Contains(t, problems[i], w)
			}
		})
	}
	require.Zero(t, f.count(t), "nothing stored")
}

func TestGroupScope(t *testing.T) {
	// A token's scope matches the name addressed: a group's name, not its
	// members'.
	tokens := []gateway.Token{
		{Name: "sre", SHA256: sha256.Sum256([]byte(tokA)), Robots: []string{"all-sre"}},
		{Name: "members", SHA256: sha256.Sum256([]byte(tokB)), Robots: []string{"sre-*", "oncall"}},
	}
	f := groupGateway(t, gateway.Options{Access: tokens})
	r := f.post(t, "/v1/messages", `{"robot":"all-sre","text":"x"}`, bearer(tokA)...)
	require.Equal(t, http.StatusAccepted, r.status, "body %s", r.body)
	r = f.post(t, "/v1/messages", `{"robot":"all-sre","text":"x"}`, bearer(tokB)...)
	require.Equal(t, http.StatusForbidden, r.status)
	_, problems := r.errBody(t)
	require.Equal(t, []string{`robot: robot "all-sre" is outside the scope of token members`}, problems)
	r = f.post(t, "/v1/fanout", `{"robots":["sre-bj","all-sre"],"text":"x"}`, bearer(tokA)...)
	require.Equal(t, http.StatusForbidden, r.status)
	require.EqualValues(t, 3, f.count(t))
}
