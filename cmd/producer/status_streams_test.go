package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/pkg/stream"
)

// status reports the streams' limits, and warns of a robot at its
// per-robot cap and of a nearly full stream; a publish over a limit is
// refused with a clear error.
func TestStatusStreamLimits(t *testing.T) {
	t.Setenv(cli.EnvRedisAddr, "")
	f := newFixture(t)
	ctx := context.Background()
	topo := f.topo
	topo.Limits = stream.Limits{OutMaxBytes: 64 << 20, OutMaxMsgsPerRobot: 3, OutMaxAge: time.Hour, DLQMaxBytes: 1 << 20, DLQMaxAge: 24 * time.Hour}
	require.NoError(t, topo.Ensure(ctx, f.js))
	for range 3 {
		require.NoError(t, f.run(t, "", "send", "--robot", "ops", "--text", "x").err)
	}
	r := f.run(t, "", "send", "--robot", "ops", "--text", "one too many")
	require.Error(t, r.err)
	require.Contains(t, r.stderr, "maximum messages per subject exceeded", "the reason is told")

	r = f.run(t, "", "status")
	require.NoError(t, r.err, r.stderr)
	st := parseStatus(t, r.stdout)
	require.Contains(t, st.diagnoses["ops"], "backlog 3 of at most 3 per robot: at the cap new messages are refused (streams.out.max_messages_per_robot)")
	_, streams, _ := strings.Cut(strings.SplitN(r.stdout, "\n\n", 2)[1], "\n\n")
	lines := strings.Split(strings.TrimRight(streams, "\n"), "\n")
	require.Len(t, lines, 3, streams)
	require.Equal(t, []string{"STREAM", "MESSAGES", "BYTES", "MAX-BYTES", "USED", "MAX-AGE", "PER-ROBOT"}, strings.Fields(lines[0]))
	out := strings.Fields(lines[1])
	require.Equal(t, []string{topo.OutStream(), "3"}, out[:2])
	require.Equal(t, []string{"67108864", "0%", "1h0m0s", "3"}, out[3:])
	require.Equal(t, []string{topo.DLQStream(), "0", "0", "1048576", "0%", "24h0m0s", "-"}, strings.Fields(lines[2]))

	r = f.run(t, "", "status", "--json")
	require.NoError(t, r.err, r.stderr)
	jl := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	var u stream.Usage
	require.NoError(t, json.Unmarshal([]byte(jl[len(jl)-2]), &u))
	require.Equal(t, stream.Usage{Stream: topo.OutStream(), Messages: 3, Bytes: u.Bytes, MaxBytes: 64 << 20, MaxAge: time.Hour, MaxMsgsPerSubject: 3}, u)
}
