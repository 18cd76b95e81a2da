package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/stream"
)

// fixture is a JetStream server with one deployment's streams.
type fixture struct {
	url  string
	js   jetstream.JetStream
	topo stream.Topology
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	url := testenv.NATSURL(t)
	_, js := testenv.Connect(t, url)
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(context.Background(), js))
	return fixture{url: url, js: js, topo: topo}
}

// result is what one run of the command produced.
type result struct {
	stdout, stderr string
	err            error
}

// run runs the command against the fixture's server and prefix.
func (f fixture) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runCmd(t, stdin, append([]string{"--nats", f.url, "--prefix", f.topo.Prefix}, args...)...)
}

func runCmd(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, strings.NewReader(stdin), &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// storedMsg is one message of the outbound stream.
type storedMsg struct {
	seq     uint64
	subject string
	msgID   string
	env     *envelope.Envelope
}

// outbound returns every message in the outbound stream, decoded.
func (f fixture) outbound(t *testing.T) []storedMsg {
	t.Helper()
	ctx := context.Background()
	s, err := f.js.Stream(ctx, f.topo.OutStream())
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var out []storedMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		require.NoError(t, err)
		env, err := envelope.Decode(m.Data)
		require.NoError(t, err, "stored message %d is not a valid envelope: %s", seq, m.Data)
		out = append(out, storedMsg{seq: seq, subject: m.Subject, msgID: m.Header.Get(jetstream.MsgIDHeader), env: env})
	}
	return out
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no subcommand", args: nil, want: "no subcommand"},
		{name: "unknown subcommand", args: []string{"publish"}, want: `unknown subcommand "publish"`},
		{name: "unknown top flag", args: []string{"--verbose", "send"}, want: "-verbose"},
		{name: "bad prefix", args: []string{"--prefix", "a.b", "send", "--robot", "r", "--text", "x"}, want: "--prefix"},
		{name: "nothing to send", args: []string{"send", "--robot", "r"}, want: "nothing to send"},
		{name: "no robot", args: []string{"send", "--text", "x"}, want: "--robot is required"},
		{name: "empty robot list", args: []string{"send", "--robot", " , ", "--text", "x"}, want: "--robot is required"},
		{name: "unknown send flag", args: []string{"send", "--robot", "r", "--txt", "x"}, want: "-txt"},
		{name: "stray argument", args: []string{"send", "--robot", "r", "--text", "x", "extra"}, want: `unexpected argument "extra"`},
		{name: "file with robot", args: []string{"send", "-f", "x.ndjson", "--robot", "r"}, want: "--robot"},
		{name: "file empty", args: []string{"send", "-f", ""}, want: "-f needs a file"},
		{name: "text and markdown", args: []string{"send", "--robot", "r", "--text", "x", "--markdown-file", "m"}, want: "choose one"},
		{name: "link and markdown", args: []string{"send", "--robot", "r", "--link-url", "https://x", "--markdown-file", "m"}, want: "choose one"},
		{name: "title on text", args: []string{"send", "--robot", "r", "--text", "x", "--title", "t"}, want: "--title applies"},
		{name: "pic without link", args: []string{"send", "--robot", "r", "--text", "x", "--pic-url", "https://p"}, want: "--pic-url needs --link-url"},
		{name: "negative ttl", args: []string{"send", "--robot", "r", "--text", "x", "--ttl", "-1m"}, want: "--ttl"},
		{name: "bad ttl", args: []string{"send", "--robot", "r", "--text", "x", "--ttl", "soon"}, want: "-ttl"},
		{name: "label without =", args: []string{"send", "--robot", "r", "--text", "x", "--label", "team"}, want: "KEY=VALUE"},
		{name: "label empty key", args: []string{"send", "--robot", "r", "--text", "x", "--label", "=v"}, want: "empty key"},
		{name: "zero timeout", args: []string{"send", "--robot", "r", "--text", "x", "--timeout", "0s"}, want: "--timeout"},
		{name: "dlq without subcommand", args: []string{"dlq"}, want: "want list, show or replay"},
		{name: "dlq unknown", args: []string{"dlq", "purge"}, want: `unknown subcommand "purge"`},
		{name: "dlq list stray", args: []string{"dlq", "list", "7"}, want: `unexpected argument "7"`},
		{name: "dlq list negative limit", args: []string{"dlq", "list", "--limit", "-1"}, want: "--limit"},
		{name: "dlq show nothing", args: []string{"dlq", "show"}, want: "exactly one sequence"},
		{name: "dlq show two", args: []string{"dlq", "show", "1", "2"}, want: "exactly one sequence"},
		{name: "dlq show not a number", args: []string{"dlq", "show", "abc"}, want: `"abc" is not a sequence number`},
		{name: "dlq show zero", args: []string{"dlq", "show", "0"}, want: "not a sequence number"},
		{name: "replay nothing", args: []string{"dlq", "replay"}, want: "or --all"},
		{name: "replay seqs and all", args: []string{"dlq", "replay", "1", "--all"}, want: "not both"},
		{name: "replay robot with seqs", args: []string{"dlq", "replay", "1", "--robot", "r"}, want: "narrow --all"},
		{name: "replay unknown reason", args: []string{"dlq", "replay", "--all", "--reason", "bored"}, want: "want one of decode"},
		{name: "help unknown", args: []string{"help", "frobnicate"}, want: "frobnicate"},
		{name: "status stray", args: []string{"status", "ops"}, want: `unexpected argument "ops"`},
		{name: "status bad robot", args: []string{"status", "--robot", "ops.*"}, want: "not a robot name"},
		{name: "status negative db", args: []string{"status", "--redis", "h:1", "--redis-db", "-1"}, want: "--redis-db"},
		{name: "status password without redis", args: []string{"status", "--redis", "", "--redis-password-env", "P"}, want: "needs --redis"},
		{name: "status unknown flag", args: []string{"status", "--limit", "3"}, want: "-limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No server runs at this address: usage errors come first.
			r := runCmd(t, "", append([]string{"--nats", "nats://127.0.0.1:1"}, tt.args...)...)
			require.Error(t, r.err)
			require.Equal(t, 2, cli.ExitCode(r.err), "error: %v", r.err)
			require.ErrorContains(t, r.err, tt.want)
		})
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "help", args: []string{"help"}, want: []string{"send", "dlq list", "dlq replay", "status", "BOTRELAY_REDIS_ADDR", "--nats", "BOTRELAY_NATS_URL", "--prefix", "BOTRELAY_PREFIX"}},
		{name: "-h", args: []string{"-h"}, want: []string{"send", "dlq"}},
		{name: "--help", args: []string{"--help"}, want: []string{"send", "dlq"}},
		{name: "send -h", args: []string{"send", "-h"}, want: []string{"--markdown-file", "--at-mobile", "--ttl", "-f FILE"}},
		{name: "help send", args: []string{"help", "send"}, want: []string{"--robot", "--label"}},
		{name: "dlq --help", args: []string{"dlq", "--help"}, want: []string{"--reason", "--delete"}},
		{name: "dlq replay -h", args: []string{"dlq", "replay", "-h"}, want: []string{"--all"}},
		{name: "status -h", args: []string{"status", "-h"}, want: []string{"--redis", "--config", "NEXT-SLOT", "--json"}},
		{name: "help status", args: []string{"help", "status"}, want: []string{"DEAD-LETTERS", "--restart-guard"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, "", tt.args...)
			require.NoError(t, r.err)
			for _, w := range tt.want {
				require.Contains(t, r.stdout, w)
			}
		})
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantPos []string
		wantAll bool
	}{
		{name: "flags first", args: []string{"--all", "1", "2"}, wantPos: []string{"1", "2"}, wantAll: true},
		{name: "flags last", args: []string{"1", "2", "--all"}, wantPos: []string{"1", "2"}, wantAll: true},
		{name: "interleaved", args: []string{"1", "--all", "2"}, wantPos: []string{"1", "2"}, wantAll: true},
		{name: "double dash", args: []string{"1", "--", "--all"}, wantPos: []string{"1", "--all"}},
		{name: "none", args: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFlagSet("t")
			all := fs.Bool("all", false, "")
			pos, err := parseArgs(fs, tt.args)
			require.NoError(t, err)
			require.Equal(t, tt.wantPos, pos)
			require.Equal(t, tt.wantAll, *all)
		})
	}

	_, err := parseArgs(newFlagSet("t"), []string{"-h"})
	require.ErrorIs(t, err, flag.ErrHelp)
}

func TestRedactURL(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{in: "nats://127.0.0.1:4222", want: "nats://127.0.0.1:4222"},
		{in: "nats://alice:s3cret@host:4222", want: "nats://alice:xxxxx@host:4222"},
		{in: "nats://tok3n@host:4222", want: "nats://xxxxx@host:4222"},
		{in: "nats://a:s3cret@h1:4222,nats://a:s3cret@h2:4222", want: "nats://a:xxxxx@h1:4222,nats://a:xxxxx@h2:4222"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := redactURL(tt.in)
			require.Equal(t, tt.want, got)
			require.NotContains(t, got, "s3cret")
			require.NotContains(t, got, "tok3n")
		})
	}
}

func TestConnectErrorHidesPassword(t *testing.T) {
	r := runCmd(t, "", "--nats", "nats://alice:s3cret@127.0.0.1:1", "--timeout", "200ms", "send", "--robot", "r", "--text", "x")
	require.Error(t, r.err)
	require.Equal(t, 1, cli.ExitCode(r.err))
	require.ErrorContains(t, r.err, "connect to NATS")
	require.NotContains(t, r.err.Error()+r.stdout+r.stderr, "s3cret")
}

func TestEnvironmentDefaults(t *testing.T) {
	f := newFixture(t)
	t.Setenv(cli.EnvNATSURL, f.url)
	t.Setenv(cli.EnvPrefix, f.topo.Prefix)
	r := runCmd(t, "", "send", "--robot", "ops", "--text", "from env", "--id", "env-1")
	require.NoError(t, r.err)
	msgs := f.outbound(t)
	require.Len(t, msgs, 1)
	require.Equal(t, "env-1", msgs[0].env.ID)

	// A flag beats the environment: this prefix has no streams.
	r = runCmd(t, "", "send", "--prefix", "nosuchprefix", "--robot", "ops", "--text", "x")
	require.ErrorContains(t, r.err, "NOSUCHPREFIX_OUT does not exist")
	require.Equal(t, 1, cli.ExitCode(r.err))
}
