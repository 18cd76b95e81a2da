package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/gateway"
)

// fleetYAML has a keyword robot, a pool and a group of both.
const fleetYAML = `robots:
  - {name: sre-bj, platform: dingtalk, webhook: "https://oapi.dingtalk.com/robot/send?access_token=${BJ_TOKEN}", keywords: ["告警"]}
  - {name: oncall-1, platform: dingtalk, webhook: "https://oapi.dingtalk.com/robot/send?access_token=${O1_TOKEN}"}
  - {name: oncall-2, platform: dingtalk, webhook: "https://oapi.dingtalk.com/robot/send?access_token=${O2_TOKEN}"}
pools:
  - {name: oncall, robots: [oncall-1, oncall-2]}
groups:
  - {name: all-sre, members: [sre-bj, oncall]}
`

// TestRunGroupsAndAlertmanager: with --config the gateway accepts pools
// and expands groups, and renders Alertmanager notifications with the
// --alertmanager-template, each member's keyword in it.
func TestRunGroupsAndAlertmanager(t *testing.T) {
	url := testenv.NATSURL(t)
	_, js := testenv.Connect(t, url)
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(context.Background(), js))
	cfg := testenv.WriteFile(t, "robots.yaml", fleetYAML)
	tmpl := testenv.WriteFile(t, "am.tmpl", `{{define "title"}}{{.Keyword}} {{.Status}} {{len .Alerts}}{{end}}{{define "text"}}{{range .Alerts}}{{.Labels.instance}} {{end}}{{end}}`)
	firing, err := os.ReadFile("../../pkg/alertmanager/testdata/firing.json")
	require.NoError(t, err)

	p := startRun(t, []string{"--listen", "127.0.0.1:0", "--prefix", topo.Prefix, "--token-env", "GW_TOKENS",
		"--config", cfg, "--alertmanager-template", tmpl}, map[string]string{cli.EnvNATSURL: url, "GW_TOKENS": token1})

	status, body := p.request(t, http.MethodPost, "/v1/alertmanager/all-sre", string(firing), token1)
	require.Equal(t, http.StatusAccepted, status, body)
	var m gateway.MultiResponse
	require.NoError(t, json.Unmarshal([]byte(body), &m))
	require.Len(t, m.Results, 2)
	s, err := js.Stream(context.Background(), topo.OutStream())
	require.NoError(t, err)
	want := map[string]string{"sre-bj": "告警 firing 2", "oncall": "firing 2"}
	for i, member := range []string{"sre-bj", "oncall"} {
		require.Equal(t, m.ID+"."+member, m.Results[i].ID)
		msg, err := s.GetMsg(context.Background(), m.Results[i].Sequence)
		require.NoError(t, err)
		require.Equal(t, topo.OutSubject(member), msg.Subject)
		env, err := envelope.Decode(msg.Data)
		require.NoError(t, err)
		require.Equal(t, &envelope.Markdown{Title: want[member], Text: "api-1:9100 api-2:9100"}, env.Message.Markdown)
	}

	status, body = p.request(t, http.MethodPost, "/v1/messages", `{"robot":"all-sre","text":"告警 x","id":"g-1"}`, token1)
	require.Equal(t, http.StatusAccepted, status, body)
	require.Contains(t, body, `"id":"g-1.oncall"`)
	status, body = p.request(t, http.MethodPost, "/v1/messages", `{"robot":"oncall","text":"x","id":"p-1"}`, token1)
	require.Equal(t, http.StatusAccepted, status, body)
	require.JSONEq(t, `{"id":"p-1","robot":"oncall","sequence":5,"duplicate":false}`, body)
	status, _ = p.request(t, http.MethodPost, "/v1/alertmanager/oncall-9", string(firing), token1)
	require.Equal(t, http.StatusNotFound, status)
}

func TestRunAlertmanagerTemplateErrors(t *testing.T) {
	cfg := testenv.WriteFile(t, "robots.yaml", fleetYAML)
	tests := []struct {
		name, tmpl string
		want       []string
	}{
		{name: "not a template", tmpl: `{{define "title"}}{{.Status{{end}}`, want: []string{"--alertmanager-template", "am.tmpl", "bad template"}},
		{name: "no text", tmpl: `{{define "title"}}x{{end}}`, want: []string{`no {{define "text"}}`}},
		{name: "keyword missing", tmpl: `{{define "title"}}{{.Status}}{{end}}{{define "text"}}x{{end}}`,
			want: []string{`robot "sre-bj"`, `none of the keywords ["告警"]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--no-auth", "--nats", "nats://" + testenv.ClosedAddr(t), "--listen", "127.0.0.1:0",
				"--config", cfg, "--alertmanager-template", testenv.WriteFile(t, "am.tmpl", tt.tmpl)}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := runEnv(ctx, args, io.Discard, io.Discard, cli.Env{Lookup: testenv.LookupMap(nil)}, nil)
			require.Equal(t, 1, cli.ExitCode(err), "err %v", err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
	err := runEnv(context.Background(), []string{"--no-auth", "--alertmanager-template", "/nonexistent/am.tmpl"}, io.Discard, io.Discard,
		cli.Env{Lookup: testenv.LookupMap(nil)}, nil)
	require.ErrorContains(t, err, "--alertmanager-template: open /nonexistent/am.tmpl")
}
