package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/stream"
)

// detailWidth is the number of characters of the detail column in a list.
const detailWidth = 60

// defaultListLimit is how many dead letters "dlq list" shows by default.
const defaultListLimit = 100

func runDLQ(ctx context.Context, g *globals, args []string, stdout, stderr io.Writer) error {
	// Connection flags may come between "dlq" and its subcommand.
	fs := g.flagSet("dlq")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, dlqUsage)
			return nil
		}
		return cli.Usagef("dlq: %w", err)
	}
	args = fs.Args()
	if len(args) == 0 {
		return cli.Usagef("dlq: no subcommand: want list, show or replay")
	}
	switch args[0] {
	case "list":
		return runDLQList(ctx, g, args[1:], stdout, stderr)
	case "show":
		return runDLQShow(ctx, g, args[1:], stdout)
	case "replay":
		return runDLQReplay(ctx, g, args[1:], stdout, stderr)
	default:
		return cli.Usagef("dlq: unknown subcommand %q: want list, show or replay", args[0])
	}
}

// dlqSession is an open connection for the dlq subcommands.
type dlqSession struct {
	js    jetstream.JetStream
	topo  stream.Topology
	close func()
}

func openDLQ(ctx context.Context, g *globals) (*dlqSession, error) {
	topo, err := g.topology()
	if err != nil {
		return nil, err
	}
	js, closeConn, err := g.open(ctx, topo.DLQStream())
	if err != nil {
		return nil, err
	}
	return &dlqSession{js: js, topo: topo, close: closeConn}, nil
}

// entryJSON is how a dead letter is printed as JSON: its sequence in the
// dead-letter stream, the record, and the raw payload as text when it is
// valid UTF-8 (the record holds it base64-encoded).
type entryJSON struct {
	Seq     uint64            `json:"seq"`
	Record  deadletter.Record `json:"record"`
	RawText string            `json:"raw_text,omitempty"`
}

func toJSON(e deadletter.Entry) entryJSON {
	out := entryJSON{Seq: e.Seq, Record: e.Record}
	if len(e.Record.Raw) > 0 && utf8.Valid(e.Record.Raw) {
		out.RawText = string(e.Record.Raw)
	}
	return out
}

func runDLQList(ctx context.Context, g *globals, args []string, stdout, stderr io.Writer) error {
	fs := g.flagSet("dlq list")
	var ff filterFlags
	ff.add(fs)
	limit := fs.Int("limit", defaultListLimit, "show at most this many (0: all)")
	asJSON := fs.Bool("json", false, "print full records, one JSON object per line")
	pos, done, err := parseSub(fs, args, stdout, dlqUsage)
	if done || err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.Usagef("dlq list: unexpected argument %q", pos[0])
	}
	if *limit < 0 {
		return cli.Usagef("dlq list: --limit must not be negative, not %d", *limit)
	}
	filter, err := ff.filter("dlq list", time.Now())
	if err != nil {
		return err
	}
	s, err := openDLQ(ctx, g)
	if err != nil {
		return err
	}
	defer s.close()
	entries, err := deadletter.ListFiltered(ctx, s.js, s.topo, filter, *limit)
	if err != nil {
		return fmt.Errorf("dlq list: %w", err)
	}
	n := len(entries)
	entries = skipUndecodable(stderr, entries)
	if *asJSON {
		enc := json.NewEncoder(jsonSafeWriter{stdout})
		for _, e := range entries {
			if err := enc.Encode(toJSON(e)); err != nil {
				return fmt.Errorf("dlq list: %w", err)
			}
		}
	} else {
		writeTable(stdout, entries)
	}
	if *limit > 0 && n == *limit {
		fmt.Fprintf(stderr, "showing the first %d dead letters; --limit 0 shows all\n", *limit)
	}
	return nil
}

// writeTable prints entries as an aligned table.
func writeTable(w io.Writer, entries []deadletter.Entry) {
	if len(entries) == 0 {
		fmt.Fprintln(w, "no dead letters")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tDEAD_AT\tROBOT\tREASON\tATTEMPTS\tERRCODE\tDETAIL")
	for _, e := range entries {
		r := e.Record
		errcode := "-"
		if r.ErrCode != 0 {
			errcode = strconv.Itoa(r.ErrCode)
		}
		detail := r.Detail
		if detail == "" {
			detail = r.ErrMsg
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", e.Seq, r.DeadAt.UTC().Format(time.RFC3339),
			oneLine(r.Robot, 32), oneLine(string(r.Reason), 24), r.Attempts, errcode, oneLine(detail, detailWidth))
	}
	_ = tw.Flush()
}

// oneLine flattens s to one line (tabs and newlines become spaces) of at
// most n characters, marking a cut with "…".
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(escapeControls(s)), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// parseSeqs parses dead-letter sequence numbers.
func parseSeqs(cmd string, args []string) ([]uint64, error) {
	seqs := make([]uint64, 0, len(args))
	for _, a := range args {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil || n == 0 {
			return nil, cli.Usagef("%s: %q is not a sequence number (a positive integer)", cmd, a)
		}
		seqs = append(seqs, n)
	}
	return seqs, nil
}

func runDLQShow(ctx context.Context, g *globals, args []string, stdout io.Writer) error {
	fs := g.flagSet("dlq show")
	pos, done, err := parseSub(fs, args, stdout, dlqUsage)
	if done || err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("dlq show: want exactly one sequence number, got %d arguments", len(pos))
	}
	seqs, err := parseSeqs("dlq show", pos)
	if err != nil {
		return err
	}
	s, err := openDLQ(ctx, g)
	if err != nil {
		return err
	}
	defer s.close()
	e, err := getEntry(ctx, g, s, seqs[0])
	if err != nil {
		return fmt.Errorf("dlq show: %w", err)
	}
	b, err := json.MarshalIndent(toJSON(e), "", "  ")
	if err != nil {
		return fmt.Errorf("dlq show: %w", err)
	}
	_, _ = jsonSafeWriter{stdout}.Write(append(b, '\n'))
	return nil
}

// getEntry reads one dead letter, saying plainly when there is none.
func getEntry(ctx context.Context, g *globals, s *dlqSession, seq uint64) (deadletter.Entry, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	e, err := deadletter.Get(ctx, s.js, s.topo, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return e, fmt.Errorf("no dead letter with sequence %d in %s", seq, s.topo.DLQStream())
	}
	return e, err
}

func runDLQReplay(ctx context.Context, g *globals, args []string, stdout, stderr io.Writer) error {
	fs := g.flagSet("dlq replay")
	all := fs.Bool("all", false, "replay every dead letter (narrowed by the selection flags)")
	var ff filterFlags
	ff.add(fs)
	del := fs.Bool("delete", false, "delete each replayed dead letter")
	force := fs.Bool("force", false, "replay even what was replayed within the duplicate window")
	dryRun := fs.Bool("dry-run", false, "print what would be replayed and change nothing")
	pos, done, err := parseSub(fs, args, stdout, dlqUsage)
	if done || err != nil {
		return err
	}
	seqs, err := parseSeqs("dlq replay", pos)
	if err != nil {
		return err
	}
	switch {
	case *all && len(seqs) > 0:
		return cli.Usagef("dlq replay: give sequence numbers or --all, not both")
	case !*all && len(seqs) == 0:
		return cli.Usagef("dlq replay: give the sequence numbers to replay, or --all")
	case !*all && ff.set():
		return cli.Usagef("dlq replay: %w", errNoSelection)
	}
	filter, err := ff.filter("dlq replay", time.Now())
	if err != nil {
		return err
	}

	s, err := openDLQ(ctx, g)
	if err != nil {
		return err
	}
	defer s.close()
	if *all {
		entries, err := deadletter.ListFiltered(ctx, s.js, s.topo, filter, 0)
		if err != nil {
			return fmt.Errorf("dlq replay: %w", err)
		}
		for _, e := range skipUndecodable(stderr, entries) {
			seqs = append(seqs, e.Seq)
		}
		if len(seqs) == 0 {
			fmt.Fprintln(stdout, "no dead letters to replay")
			return nil
		}
	}

	if *dryRun {
		return dryRunReplay(ctx, g, s, seqs, *del, stdout, stderr)
	}

	var replayed, skipped, failed int
	bar := newProgress(stderr, len(seqs))
	for i, seq := range seqs {
		bar.update(i)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("dlq replay: interrupted: %w (%d replayed, %d skipped, %d failed)", err, replayed, skipped, failed)
		}
		rctx, cancel := context.WithTimeout(ctx, g.timeout)
		replay := deadletter.Replay
		if *force {
			replay = deadletter.ReplayAgain
		}
		e, err := replay(rctx, s.js, s.topo, seq, *del)
		cancel()
		switch {
		case errors.Is(err, deadletter.ErrAlreadyReplayed):
			skipped++
			fmt.Fprintf(stdout, "seq %d: already replayed moments ago (id=%s robot=%s); skipped, dead letter kept (--force replays it again)\n",
				seq, e.Record.Envelope.ID, e.Record.Robot)
		case errors.Is(err, deadletter.ErrNotReplayable):
			skipped++
			fmt.Fprintf(stdout, "seq %d: not replayable (reason %s, robot %s): the record holds no envelope; skipped\n",
				seq, e.Record.Reason, e.Record.Robot)
		case errors.Is(err, jetstream.ErrMsgNotFound):
			failed++
			fmt.Fprintf(stderr, "seq %d: no such dead letter in %s\n", seq, s.topo.DLQStream())
		case err != nil:
			failed++
			fmt.Fprintf(stderr, "seq %d: %v\n", seq, err)
		default:
			replayed++
			env := e.Record.Envelope
			note := ""
			if *del {
				note = ", dead letter deleted"
			}
			fmt.Fprintf(stdout, "seq %d: replayed id=%s robot=%s to %s%s\n", seq, env.ID, env.Robot, s.topo.OutSubject(env.Robot), note)
			if env.Expired(time.Now()) {
				fmt.Fprintf(stderr, "seq %d: warning: id=%s expired at %s; the worker will dead-letter it again as expired\n",
					seq, env.ID, env.ExpiresAt.UTC().Format(time.RFC3339))
			}
		}
	}
	bar.update(len(seqs))
	fmt.Fprintf(stdout, "%d replayed, %d skipped, %d failed\n", replayed, skipped, failed)
	if failed > 0 {
		return fmt.Errorf("dlq replay: %d of %d dead letters failed", failed, len(seqs))
	}
	return nil
}
