package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/stream"
)

// Bulk sending reads and publishes an NDJSON file in batches, so a file of
// any size takes bounded memory.
const (
	// batchSize is the number of envelopes per [publisher.Publisher.PublishAll].
	batchSize = 500
	// maxLineBytes is the longest line accepted; longer lines are reported
	// and skipped. An envelope's content is at most 20000 bytes of JSON, so
	// a valid line is far shorter.
	maxLineBytes = 1 << 20
)

// sendFile publishes the envelopes of an NDJSON file (or stdin for "-"),
// one per line. Blank lines are skipped. A line whose id or created_at is
// missing gets a fresh id and the current time before validation; an
// invalid line is reported on stderr with its line number and not
// published. It returns an error when any line failed.
// With size (from --config) each robot gets its platform's size rules; with
// groups (from --config) a line addressed to a group is published as one
// copy per member, ids "<id>.<member>".
func sendFile(ctx context.Context, g *globals, topo stream.Topology, name string, size func(string) envelope.Limits,
	groups func(string) ([]string, bool), stdin io.Reader, stdout, stderr io.Writer) error {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("send -f: %w", err)
		}
		defer f.Close()
		r = f
	}
	var popts []publisher.Option
	if size != nil {
		popts = append(popts, publisher.WithSizeRules(size))
	}
	if groups != nil {
		popts = append(popts, publisher.WithGroups(groups))
	}
	pub, closeConn, err := g.openPublisher(ctx, topo, popts...)
	if err != nil {
		return err
	}
	defer closeConn()

	b := bulk{pub: pub, timeout: g.timeout, stdout: stdout, stderr: stderr}
	br := bufio.NewReaderSize(r, 64<<10)
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			b.flush(ctx)
			return fmt.Errorf("send -f: stopped at line %d: %w (%s)", lineNo, err, b.summary())
		}
		line, tooLong, readErr := readLine(br, maxLineBytes)
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			b.flush(ctx)
			return fmt.Errorf("send -f: read line %d: %w (%s)", lineNo, readErr, b.summary())
		}
		switch line = bytes.TrimSpace(line); {
		case tooLong:
			b.fail(lineNo, fmt.Errorf("line longer than %d bytes", maxLineBytes))
		case len(line) > 0:
			env, err := prepareLine(line, time.Now)
			if err != nil {
				b.fail(lineNo, err)
			} else {
				b.add(ctx, lineNo, env)
			}
		}
		if errors.Is(readErr, io.EOF) {
			break
		}
	}
	b.flush(ctx)
	fmt.Fprintln(stdout, b.summary())
	if b.failed > 0 {
		return fmt.Errorf("send -f: %d of %d envelopes failed", b.failed, b.failed+b.published)
	}
	return nil
}

// readLine reads one line of at most max bytes (newline included). A
// longer line is consumed to its end and reported with tooLong. err is
// io.EOF at the end of the input, possibly with a last unterminated line.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong && len(line)+len(chunk) > max {
			tooLong, line = true, nil
		}
		if !tooLong {
			line = append(line, chunk...)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, tooLong, err
		}
	}
}

// prepareLine decodes one NDJSON line into a valid envelope, first giving
// it a fresh id and a created_at of now() when they are missing, null or
// empty. Errors are one line, each validation problem naming its field.
func prepareLine(line []byte, now func() time.Time) (*envelope.Envelope, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if fields == nil {
		return nil, errors.New("not a JSON object: null")
	}
	if missing(fields["id"]) {
		fields["id"], _ = json.Marshal(envelope.NewID())
	}
	if missing(fields["created_at"]) {
		fields["created_at"], _ = json.Marshal(now().UTC())
	}
	data, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("re-encode: %w", err)
	}
	env, err := envelope.Decode(data)
	if errors.Is(err, envelope.ErrInvalid) {
		return nil, errors.New("invalid envelope: " + strings.Join(describeProblems(err, false), "; "))
	}
	if err != nil {
		return nil, err
	}
	return env, nil
}

// missing reports whether a JSON field is absent, null or "".
func missing(raw json.RawMessage) bool {
	switch strings.TrimSpace(string(raw)) {
	case "", "null", `""`:
		return true
	}
	return false
}

// bulk publishes envelopes in batches and reports each by line number.
type bulk struct {
	pub            *publisher.Publisher
	timeout        time.Duration
	stdout, stderr io.Writer

	envs  []*envelope.Envelope
	lines []int

	published, failed int
	duplicates        int // of published: already held by the stream
}

func (b *bulk) fail(lineNo int, err error) {
	b.failed++
	fmt.Fprintf(b.stderr, "line %d: %v\n", lineNo, err)
}

// add queues env, or for a group each member's copy, under lineNo.
func (b *bulk) add(ctx context.Context, lineNo int, env *envelope.Envelope) {
	envs := []*envelope.Envelope{env}
	if b.pub.IsGroup(env.Robot) {
		envs = envs[:0]
		for _, m := range b.pub.Targets(env.Robot) {
			envs = append(envs, env.ForRobot(m, 0))
		}
	}
	for _, e := range envs {
		b.envs = append(b.envs, e)
		b.lines = append(b.lines, lineNo)
		if len(b.envs) >= batchSize {
			b.flush(ctx)
		}
	}
}

// flush publishes the pending batch and waits for every acknowledgement.
func (b *bulk) flush(ctx context.Context) {
	if len(b.envs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
	defer cancel()
	results, _ := b.pub.PublishAll(ctx, b.envs)
	for i, res := range results {
		if res.Err != nil {
			b.fail(b.lines[i], res.Err) // it names the id and robot
			continue
		}
		b.published++
		status := "published"
		if res.Ack.Duplicate {
			b.duplicates++
			status = "duplicate"
		}
		fmt.Fprintf(b.stdout, "line %d: %s id=%s robot=%s seq=%d\n", b.lines[i], status, res.ID, res.Robot, res.Ack.Sequence)
	}
	b.envs, b.lines = b.envs[:0], b.lines[:0]
}

// summary counts the lines: duplicates count as published (the stream
// holds them) and are named when there are any.
func (b *bulk) summary() string {
	s := fmt.Sprintf("%d published, %d failed", b.published, b.failed)
	if b.duplicates > 0 {
		s += fmt.Sprintf(" (%d of the published were duplicates, already stored)", b.duplicates)
	}
	return s
}
