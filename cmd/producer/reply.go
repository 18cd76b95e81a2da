package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/inbound"
	"github.com/botrelay/botrelay/pkg/publisher"
)

const replyUsage = `producer reply --to EVENT_ID --text TEXT [--id ID] [--mention-sender]
  Store a reply to an inbound event (the id inbound tail prints): the
  workers post it to the callback's session webhook until it expires.
  --mention-sender mentions the event's sender (atUserIds and @id).
`

func runReply(ctx context.Context, g *globals, args []string, stdout io.Writer) error {
	fs := g.flagSet("reply")
	to := fs.String("to", "", "the inbound event answered (required)")
	text := fs.String("text", "", "the reply's text (required)")
	id := fs.String("id", "", "the reply's envelope id (default: generated)")
	mention := fs.Bool("mention-sender", false, "mention the event's sender")
	rest, err := parseArgs(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, replyUsage)
			return nil
		}
		return cli.Usagef("reply: %w", err)
	}
	switch {
	case len(rest) > 0:
		return cli.Usagef("reply: unexpected argument %q", rest[0])
	case *to == "" || *text == "":
		return cli.Usagef("reply: --to and --text are required")
	}
	if _, _, err := inbound.ParseEventID(*to); err != nil {
		return cli.Usagef("reply: --to: %w", err)
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
	cctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	ev, err := inbound.Get(cctx, js, topo, *to)
	if err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	env := envelope.New(ev.App, envelope.Message{Text: &envelope.Text{Content: *text}})
	if *id != "" {
		env.ID = *id
	}
	if who := ev.SenderStaffID; *mention {
		if who == "" {
			who = ev.SenderID
		}
		env.At = &envelope.At{UserIDs: []string{who}}
		if !strings.Contains(*text, "@"+who) {
			env.Message.Text.Content = "@" + who + " " + *text
		}
	}
	pub, err := publisher.New(js, topo, publisher.WithDefaultTimeout(g.timeout))
	if err != nil {
		return err
	}
	ack, err := pub.Reply(cctx, ev.ID, env)
	if err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	fmt.Fprintf(stdout, "stored reply %s to %s (app %s, sequence %d, duplicate %t)\n", env.ID, ev.ID, ev.App, ack.Sequence, ack.Duplicate)
	return nil
}
