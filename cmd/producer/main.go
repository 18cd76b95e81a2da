// Command producer hands notifications to botrelay and lets on-call
// engineers see why a robot is not delivering, and inspect and replay dead
// letters.
//
//	producer send --robot ops --text "disk full on db-3"
//	producer send --robot ops,dev --markdown-file report.md --title "Nightly report"
//	producer send --robot ops --markdown-file build.log --title "Build log" --split
//	producer send -f envelopes.ndjson
//	producer dlq list --robot ops
//	producer dlq show 42
//	producer dlq replay 42 43 --delete
//	producer status --redis 127.0.0.1:6379 --config robots.yaml
//
// The NATS server is --nats (or BOTRELAY_NATS_URL, default
// nats://127.0.0.1:4222) and the deployment's subject and stream prefix is
// --prefix (or BOTRELAY_PREFIX, default "botrelay"). Run "producer help" for
// every subcommand and flag.
//
// "producer status" reads, and never changes, the queues (backlog, pending
// and redelivered messages, waiting workers, dead letters per robot) and,
// with --redis (or BOTRELAY_REDIS_ADDR) and --config, the limiter (cool-off,
// restart guard, window and next slot, read under each robot's webhook
// identity as the workers key it), and says in a line per robot what keeps
// it from delivering.
//
// Exit status: 0 on success, 1 on a failure (nothing or not everything was
// published or replayed; status could not read the streams or Redis), 2 on
// a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/pkg/stream"
)

func main() {
	// go-redis prints connection-pool complaints with its own global
	// logger; "status" reports Redis failures itself.
	redis.SetLogger(quietRedis{})
	cli.Main(cli.Command{
		Name:      "producer",
		UsageHint: "Run 'producer help' for usage.",
		Run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return run(ctx, args, os.Stdin, stdout, stderr)
		},
	})
}

// quietRedis discards go-redis's internal log lines.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// globals are the flags every subcommand accepts, before or after its name.
type globals struct {
	natsURL string
	prefix  string
	timeout time.Duration
}

// defaultGlobals reads the environment for the connection defaults.
func defaultGlobals() globals {
	return globals{
		natsURL: cli.EnvOr(os.LookupEnv, cli.EnvNATSURL, cli.DefaultNATSURL),
		prefix:  cli.EnvOr(os.LookupEnv, cli.EnvPrefix, stream.DefaultPrefix),
		timeout: 10 * time.Second,
	}
}

// register adds the global flags to fs, with g's current values as
// defaults, so that a value given before the subcommand name survives.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.natsURL, "nats", g.natsURL, "NATS server URL")
	fs.StringVar(&g.prefix, "prefix", g.prefix, "subject and stream prefix of the deployment")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "timeout of each request or batch")
}

// flagSet returns a flag set for the (sub)command name, with the global
// flags.
func (g *globals) flagSet(name string) *flag.FlagSet {
	fs := newFlagSet(name)
	g.register(fs)
	return fs
}

// topology validates the prefix and returns the deployment's topology.
func (g *globals) topology() (stream.Topology, error) {
	topo := stream.Topology{Prefix: g.prefix}
	if err := topo.Validate(); err != nil {
		return topo, cli.Usagef("--prefix: %w", err)
	}
	return topo, nil
}

// connect opens a NATS connection and a JetStream context; call the
// returned function to close them.
func (g *globals) connect() (jetstream.JetStream, func(), error) {
	if g.timeout <= 0 {
		return nil, nil, cli.Usagef("--timeout must be positive, not %s", g.timeout)
	}
	nc, err := nats.Connect(g.natsURL, nats.Name("botrelay-producer"), nats.Timeout(g.timeout))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w", redactURL(g.natsURL), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nc.Close, nil
}

// open connects (see connect) and checks that the stream called name
// exists, failing clearly when it does not instead of letting every
// request time out. Call the returned function to close the connection.
func (g *globals) open(ctx context.Context, name string) (jetstream.JetStream, func(), error) {
	js, closeConn, err := g.connect()
	if err != nil {
		return nil, nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	switch _, err := js.Stream(cctx, name); {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		closeConn()
		return nil, nil, fmt.Errorf("stream %s does not exist: check --prefix (%q), or start a worker, which creates the streams",
			name, g.prefix)
	case err != nil:
		closeConn()
		return nil, nil, fmt.Errorf("look up stream %s: %w", name, err)
	}
	return js, closeConn, nil
}

// redactURL hides credentials in a NATS URL or comma-separated list of
// URLs: a password is replaced by "xxxxx", and so is a bare user part,
// which NATS reads as a token.
func redactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		switch {
		case err != nil:
			parts[i] = "(unparsable URL)"
		case u.User == nil:
		default:
			if _, ok := u.User.Password(); ok {
				parts[i] = u.Redacted()
			} else {
				u.User = url.User("xxxxx")
				parts[i] = u.String()
			}
		}
	}
	return strings.Join(parts, ",")
}

// newFlagSet returns a flag set that reports errors to run's caller
// instead of printing them.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseArgs parses flags anywhere among args (flag.Parse stops at the
// first positional argument) and returns the positional arguments. "--"
// ends the flags. -h and --help give [flag.ErrHelp].
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, cli.Usagef("%s: %w", fs.Name(), err)
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseSub parses a subcommand's args with [parseArgs]. On -h or --help
// it prints usage to stdout and returns done: the subcommand has nothing
// left to do.
func parseSub(fs *flag.FlagSet, args []string, stdout io.Writer, usage string) (pos []string, done bool, err error) {
	pos, err = parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return nil, true, nil
	}
	return pos, false, err
}

// run executes the command line args (without the program name), reading
// stdin for "send -f -", writing results to stdout and progress and
// per-item problems to stderr. It returns a [cli.UsageError] for a bad command
// line.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	g := defaultGlobals()
	fs := g.flagSet("producer")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usageText)
			return nil
		}
		return cli.UsageError{Err: err}
	}
	args = fs.Args()
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return cli.Usagef("no subcommand: want send, dlq, status, inbound, reply or help")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "send":
		return runSend(ctx, &g, rest, stdin, stdout, stderr)
	case "dlq":
		return runDLQ(ctx, &g, rest, stdout, stderr)
	case "status":
		return runStatus(ctx, &g, rest, stdout, stderr)
	case "inbound":
		return runInbound(ctx, &g, rest, stdout)
	case "reply":
		return runReply(ctx, &g, rest, stdout)
	case "help":
		return runHelp(rest, stdout)
	default:
		return cli.Usagef("unknown subcommand %q: want send, dlq, status, inbound, reply or help", cmd)
	}
}

// runHelp prints the usage of everything, or of one subcommand.
func runHelp(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, usageText)
		return nil
	}
	switch args[0] {
	case "send":
		fmt.Fprint(stdout, sendUsage)
	case "dlq":
		fmt.Fprint(stdout, dlqUsage)
	case "status":
		fmt.Fprint(stdout, statusUsage)
	default:
		return cli.Usagef("help: unknown subcommand %q", args[0])
	}
	return nil
}

const globalUsage = `Connection flags (accepted by every subcommand, before or after its name):
  --nats URL        NATS server (env BOTRELAY_NATS_URL, default nats://127.0.0.1:4222)
  --prefix P        subject and stream prefix (env BOTRELAY_PREFIX, default botrelay)
  --timeout D       timeout of each request or batch (default 10s)
`

const sendUsage = `producer send: publish notifications.

  producer send --robot NAME[,NAME...] --text TEXT [flags]
  producer send --robot NAME --markdown-file FILE --title TITLE [flags]
  producer send --robot NAME --link-url URL --title TITLE --text TEXT [--pic-url URL] [flags]
  producer send -f FILE.ndjson          (or -f - for stdin)

Message flags:
  --robot NAME      robot or pool to notify; repeat or comma-separate for
                    fan-out (each robot gets its own copy with id <id>.<robot>);
                    with --config also a group, sent to each member (a robot
                    or pool) with id <id>.<member>; a robot named twice, or
                    also through a group, gets one copy
  --text TEXT       plain text (or the description of a link card)
  --markdown-file F markdown body read from F ("-" for stdin); needs --title
  --title T         title of a markdown message or link card
  --link-url URL    send a link card to URL; needs --title and --text
  --pic-url URL     picture of a link card
  --id ID           message id, the dedup key (default a fresh random id)
  --at-mobile M     mention a mobile number (repeatable)
  --at-user ID      mention a user id (repeatable)
  --at-all          mention everyone
  --label K=V       label (repeatable)
  --ttl D           expire the message D after now (e.g. 10m): not posted later
  --config FILE     the workers' robots.yaml: check (and --split) each copy
                    under its robot's platform's size rules (WeCom: 2,048
                    bytes of text, 4,096 of markdown, 8 links; a pool: its
                    robots'); without it, DingTalk's rules for every robot.
                    With it, groups are expanded (also in -f lines) and a
                    name that is no robot, pool or group is refused
  --split           send a text or markdown message too long for one post
                    (20,000 bytes of JSON) as parts with ids <id>.p1, <id>.p2,
                    ..., each marked "(i/n)" (a markdown title too), in order;
                    mentions go with the last part; a keyword robot needs its
                    keyword in every part (put it in the markdown title)

Bulk:
  -f FILE           one JSON envelope per line; a missing id or created_at is
                    filled in; invalid lines are reported with their line
                    number and skipped, the others published in batches

Each published message prints its id, robot and stream sequence, or
"duplicate" when the stream already held that id.
`

const dlqUsage = `producer dlq: inspect and replay dead letters.

  producer dlq list [SELECTION] [--limit N] [--json]
  producer dlq show SEQ
  producer dlq replay SEQ... [--delete] [--force] [--dry-run]
  producer dlq replay --all [SELECTION] [--delete] [--force] [--dry-run]

  SELECTION narrows the dead letters (all must match):
    --robot R       the robot's
    --reason REASON decode, unknown_robot, missing_keyword, permanent,
                    exhausted, expired or redelivered
    --errcode N     the platform's errcode (0: records without one)
    --since T       written at or after T: RFC 3339 (2026-12-01T08:00:00Z)
                    or a duration ago (90m)
    --until T       written before T
    --grep TEXT     TEXT in the detail, errmsg, envelope id or content
                    (case-insensitive)

  list              a table of dead letters, oldest first (--limit 0: all;
                    --json: one full record per line)
  show SEQ          one dead letter as indented JSON
  replay            publish the envelopes again, with a new dedup id, to their
                    robots (the worker gives them a fresh attempt budget);
                    records without an envelope (decode failures) are skipped
    --all           every dead letter matching SELECTION
    --dry-run       print what would be replayed (and deleted); change nothing
    --delete        remove each replayed record from the dead-letter stream
    --force         replay also records replayed within the duplicate window
                    (two minutes by default), which are otherwise skipped so
                    that a repeated command sends nothing twice
                    A replay of 20 or more shows its progress on stderr: a bar
                    on a terminal, a line every tenth otherwise.
`

const usageText = `producer: hand notifications to botrelay; see why a robot is not delivering;
inspect and replay dead letters.

Usage:
  producer send ...         publish a message, a fan-out or an NDJSON file
  producer dlq list|show|replay ...
  producer status ...       per robot: queue, workers, limiter, dead letters, diagnosis
  producer inbound tail --app NAME [--count N]
                            print an app's inbound events (callbacks)
  producer reply --to EVENT_ID --text TEXT [--mention-sender]
                            answer an inbound event
  producer help [send|dlq|status]
                            this text, or a subcommand's

` + globalUsage + `
` + sendUsage + `
` + dlqUsage + `
` + statusUsage + `
` + inboundUsage + `
` + replyUsage + `
Exit status: 0 ok, 1 failure, 2 usage error.
`
