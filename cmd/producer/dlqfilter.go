package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/pkg/deadletter"
)

// filterFlags are the dead-letter selection flags shared by "dlq list" and
// "dlq replay --all"; they build a [deadletter.Filter], the same one the
// console uses.
type filterFlags struct {
	robot, reason, errcode, since, until, text string
}

// add registers the flags on fs.
func (ff *filterFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&ff.robot, "robot", "", "only this robot's dead letters")
	fs.StringVar(&ff.reason, "reason", "", "only dead letters of this reason")
	fs.StringVar(&ff.errcode, "errcode", "", "only dead letters with this platform errcode")
	fs.StringVar(&ff.since, "since", "", "only dead letters written at or after this time (RFC 3339, or a duration ago: 2h)")
	fs.StringVar(&ff.until, "until", "", "only dead letters written before this time (RFC 3339, or a duration ago)")
	fs.StringVar(&ff.text, "grep", "", "only dead letters whose detail, errmsg, id or content contains this text")
}

// set reports whether any selection flag was given.
func (ff filterFlags) set() bool { return ff != filterFlags{} }

// filter parses the flags; a bad value is a usage error of cmd.
func (ff filterFlags) filter(cmd string, now time.Time) (deadletter.Filter, error) {
	f, err := deadletter.ParseFilter(ff.robot, ff.reason, ff.errcode, ff.since, ff.until, ff.text, now)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), deadletter.ErrInvalidFilter.Error()+": ")
		return f, cli.Usagef("%s: %s", cmd, msg)
	}
	return f, nil
}

// dryRunReplay prints what "dlq replay" would do with seqs and changes
// nothing: each record is read, never published or deleted.
func dryRunReplay(ctx context.Context, g *globals, s *dlqSession, seqs []uint64, del bool, stdout, stderr io.Writer) error {
	var would, skip, failed int
	for _, seq := range seqs {
		e, err := getEntry(ctx, g, s, seq)
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(stderr, "seq %d: %v\n", seq, err)
		case e.Record.Envelope == nil:
			skip++
			fmt.Fprintf(stdout, "seq %d: not replayable (reason %s, robot %s): the record holds no envelope\n",
				seq, e.Record.Reason, e.Record.Robot)
		default:
			would++
			env := e.Record.Envelope
			note := ""
			if del {
				note = " and delete the dead letter"
			}
			fmt.Fprintf(stdout, "seq %d: would replay id=%s robot=%s to %s%s\n", seq, env.ID, env.Robot, s.topo.OutSubject(env.Robot), note)
		}
	}
	fmt.Fprintf(stdout, "dry run: %d would be replayed, %d skipped, %d failed; nothing was changed\n", would, skip, failed)
	if failed > 0 {
		return fmt.Errorf("dlq replay: %d of %d dead letters could not be read", failed, len(seqs))
	}
	return nil
}

// progress reports a long replay on w: a bar redrawn in place on a
// terminal, a plain line every tenth of the way otherwise (or every item
// when there are at most 10). Short replays (under progressMin items) show
// nothing: the per-item lines say it all.
type progress struct {
	w     io.Writer
	tty   bool
	total int
	step  int
}

// progressMin is the smallest replay that gets a progress report.
const progressMin = 20

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, tty: isTerminal(w), total: total, step: max(1, total/10)}
}

// update reports that done of total are finished.
func (p *progress) update(done int) {
	if p.total < progressMin {
		return
	}
	if p.tty {
		const width = 30
		fill := width * done / p.total
		fmt.Fprintf(p.w, "\r[%s%s] %d/%d", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), done, p.total)
		if done == p.total {
			fmt.Fprintln(p.w)
		}
		return
	}
	if done%p.step == 0 || done == p.total {
		fmt.Fprintf(p.w, "progress: %d/%d\n", done, p.total)
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil {
		return false
	}
	return st.Mode()&os.ModeCharDevice != 0
}

// errNoSelection is returned by selection flags given without --all.
var errNoSelection = errors.New("--robot, --reason, --errcode, --since, --until and --grep narrow --all; with sequence numbers, list only those you want")
