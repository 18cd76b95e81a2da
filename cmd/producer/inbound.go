package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/pkg/inbound"
)

const inboundUsage = `producer inbound tail --app NAME [--count N] [--new]
  Print the app's inbound events (verified callbacks) as JSON lines: id,
  sender, conversation, text, the session webhook's expiry; never the
  session webhook itself nor the app secret. Read-only: it acks nothing,
  so the services consuming the app's events (pkg/inbound) still get
  every one. From the first event kept, or with --new from now on; stops
  after N events with --count, else at an interrupt.
`

func runInbound(ctx context.Context, g *globals, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "tail" {
		return cli.Usagef("inbound: want the subcommand tail")
	}
	fs := g.flagSet("inbound tail")
	app := fs.String("app", "", "the app whose events to print (required)")
	count := fs.Int("count", 0, "stop after this many events (0: until interrupted)")
	onlyNew := fs.Bool("new", false, "only events stored from now on")
	rest, err := parseArgs(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, inboundUsage)
			return nil
		}
		return cli.Usagef("inbound tail: %w", err)
	}
	switch {
	case len(rest) > 0:
		return cli.Usagef("inbound tail: unexpected argument %q", rest[0])
	case *app == "":
		return cli.Usagef("inbound tail: --app is required")
	case *count < 0:
		return cli.Usagef("inbound tail: --count must not be negative")
	}
	topo, err := g.topology()
	if err != nil {
		return err
	}
	js, closeConn, err := g.open(ctx, topo.InStream())
	if err != nil {
		return err
	}
	defer closeConn()
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{topo.InSubject(*app)}}
	if *onlyNew {
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	c, err := js.OrderedConsumer(ctx, topo.InStream(), cfg)
	if err != nil {
		return fmt.Errorf("inbound tail: %w", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	for n := 0; *count == 0 || n < *count; {
		msg, err := c.Next(jetstream.FetchMaxWait(time.Second))
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			continue // no event within the wait: keep waiting
		}
		md, err := msg.Metadata()
		if err != nil {
			continue
		}
		e, err := inbound.Decode(msg.Data(), md.Sequence.Stream)
		if err != nil {
			continue
		}
		if err := enc.Encode(e.Summary()); err != nil {
			return err
		}
		n++
	}
	return nil
}
