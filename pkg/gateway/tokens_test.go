package gateway_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/gateway"
)

func TestParseTokens(t *testing.T) {
	sumA := sha256.Sum256([]byte(tokA))
	hexA := hex.EncodeToString(sumA[:])
	env := testenv.LookupMap(map[string]string{"TEAM_B": tokB, "EMPTY": " "})
	tests := []struct {
		name string
		yaml string
		want []gateway.Token
		err  string
	}{
		{name: "full", yaml: `tokens:
  - name: team-a
    sha256: "` + hexA + `"
    robots: ["team-a-*", "ops-alerts"]
    rate: 50
    burst: 100
    max_messages_per_minute: 600
  - name: team-b
    token_env: TEAM_B
`, want: []gateway.Token{
			{Name: "team-a", SHA256: sumA, Robots: []string{"team-a-*", "ops-alerts"}, Rate: 50, Burst: 100, MaxMessagesPerMinute: 600},
			{Name: "team-b", SHA256: sha256.Sum256([]byte(tokB))},
		}},
		{name: "no tokens", yaml: "tokens: []\n", err: "gateway: invalid tokens: no tokens"},
		{name: "unknown field", yaml: "tokens:\n  - name: a\n    token: S3cret\n", err: "line 3: unknown field token"},
		{name: "wrong type", yaml: "tokens:\n  - name: a\n    rate: S3cret\n", err: "line 3: wrong type of value"},
		{name: "bad hash", yaml: "tokens:\n  - name: a\n    sha256: S3cret\n", err: `tokens[0] "a": sha256: must be 64 hex digits`},
		{name: "unset env", yaml: "tokens:\n  - name: a\n    token_env: NOPE\n", err: `tokens[0] "a": token_env: environment variable NOPE is not set or empty`},
		{name: "empty env", yaml: "tokens:\n  - name: a\n    token_env: EMPTY\n", err: "EMPTY is not set or empty"},
		{name: "both", yaml: "tokens:\n  - name: a\n    token_env: TEAM_B\n    sha256: \"" + hexA + "\"\n", err: "sha256 and token_env: set one"},
		{name: "no token", yaml: "tokens:\n  - name: a\n", err: `tokens[0] "a": no token: set sha256 or token_env`},
		{name: "bad name", yaml: "tokens:\n  - name: a b\n    token_env: TEAM_B\n", err: "tokens[0]: name: must be 1-64 characters"},
		{name: "duplicate name", yaml: "tokens:\n  - {name: a, token_env: TEAM_B}\n  - {name: a, sha256: \"" + hexA + "\"}\n",
			err: `tokens[1] "a": name: also the name of tokens[0]`},
		{name: "same token twice", yaml: "tokens:\n  - {name: a, token_env: TEAM_B}\n  - {name: b, token_env: TEAM_B}\n",
			err: `tokens[1] "b": the same token as tokens[0]`},
		{name: "bad glob", yaml: "tokens:\n  - {name: a, token_env: TEAM_B, robots: [\"team-[\"]}\n", err: "robots[0]: not a robot name or glob"},
		{name: "negative rate", yaml: "tokens:\n  - {name: a, token_env: TEAM_B, rate: -1}\n", err: "rate: must be a positive number"},
		{name: "burst without rate", yaml: "tokens:\n  - {name: a, token_env: TEAM_B, burst: 5}\n", err: "burst: needs a rate"},
		{name: "negative quota", yaml: "tokens:\n  - {name: a, token_env: TEAM_B, max_messages_per_minute: -5}\n", err: "max_messages_per_minute: must not be negative"},
		{name: "syntax", yaml: "tokens:\n  - name: [S3cret\n", err: "YAML syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := gateway.ParseTokens([]byte(tt.yaml), env)
			if tt.err == "" {
				require.NoError(t, err)
				require.Equal(t, tt.want, got)
				return
			}
			require.ErrorIs(t, err, gateway.ErrInvalidTokens)
			require.ErrorContains(t, err, tt.err)
			require.NotContains(t, err.Error(), "S3cret", "no value echoed")
			require.NotContains(t, err.Error(), hexA)
		})
	}
}

func TestTokenAllows(t *testing.T) {
	tests := []struct {
		name   string
		robots []string
		robot  string
		want   bool
	}{
		{name: "no scope: every robot", robot: "any", want: true},
		{name: "exact name", robots: []string{"ops-alerts"}, robot: "ops-alerts", want: true},
		{name: "not a prefix", robots: []string{"ops"}, robot: "ops-alerts"},
		{name: "glob", robots: []string{"team-a-*"}, robot: "team-a-db", want: true},
		{name: "glob elsewhere", robots: []string{"team-a-*"}, robot: "team-b-db"},
		{name: "character class", robots: []string{"dev-[0-9]"}, robot: "dev-7", want: true},
		{name: "second pattern", robots: []string{"x", "y?"}, robot: "yz", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := gateway.Token{Name: "t", Robots: tt.robots}
			require.Equal(t, tt.want, tok.Allows(tt.robot))
		})
	}
}

func TestExampleTokensFile(t *testing.T) {
	data, err := os.ReadFile("../../examples/tokens.yaml")
	require.NoError(t, err)
	tokens, err := gateway.ParseTokens(data, testenv.LookupMap(map[string]string{"TEAM_B_GATEWAY_TOKEN": tokB}))
	require.NoError(t, err)
	require.Len(t, tokens, 3)
	require.Equal(t, sha256.Sum256([]byte("test")), tokens[0].SHA256, "the example's hash is of \"test\"")
	require.True(t, tokens[0].Allows("ops-alerts"))
	require.False(t, tokens[1].Allows("ops-alerts"))
	require.True(t, tokens[2].Allows("anything"))
}
