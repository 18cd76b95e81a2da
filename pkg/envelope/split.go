package envelope

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// LabelPart is the label [Split] sets on each part of a split message:
// "<i>/<n>", e.g. "2/3".
const LabelPart = "botrelay.part"

// maxMarkerDigits bounds the digits of a part count: more than 9,999,999
// parts is not a message.
const maxMarkerDigits = 7

// Split cuts a message that is too large for one post into parts that each
// fit, so that it can be published instead of refused with [ErrTooLarge].
//
// maxBytes is the limit, measured as [Envelope.Validate] measures it (the
// JSON encoding of the message plus the mentions); 0 or less, or more than
// [MaxContentBytes], means [MaxContentBytes]. When e fits, Split returns
// []*Envelope{e}, e itself and unchanged. Otherwise each part is filled
// to at most maxBytes − [FramingReserve], leaving room for the platform's
// framing, and the last part's mentions are counted twice (as mentions
// and as the "@…" text the deliverer adds for each). An envelope with
// other problems gets its [Envelope.Validate] problems back. Only text and
// markdown messages are split; any other kind that does not fit gets an
// error matching [ErrTooLarge] (and [ErrInvalid]). Like
// [Envelope.Validate]'s, Split's errors are [*FieldError]s, joined with
// [errors.Join].
//
// The content (a markdown message's text) is cut at line ends, each line
// end staying with the line before it; a single line longer than a part
// is cut between characters, never inside a UTF-8 sequence. Nothing else
// is changed, so the parts' contents without their markers, concatenated,
// give the original. Each part carries a visible marker: a text part's
// content ends with "\n(i/n)"; a markdown part's text ends with the same
// and its title with " (i/n)", the title being repeated in every part. A
// markdown construct spanning a cut (a code fence, a table) renders broken
// in both parts: keep blocks shorter than a part, or cut them yourself.
//
// Part i (from 1) is a copy of e with ID "<id>.p<i>" (shortened with a
// hash past [MaxIDLen], as [Envelope.ForRobot] does), the same robot,
// times and labels plus [LabelPart] = "i/n". The IDs are deterministic:
// splitting the same envelope with the same limit gives the same parts,
// so a retried publish of the parts is deduplicated (JetStream
// Nats-Msg-Id, DingTalk msgUuid). Publish the parts in order: the worker
// delivers a robot's messages in the order they were stored.
//
// Mentions (At) go on the last part only, so that people are pinged once,
// when the whole message has arrived; the parts before it have none. The
// deliverer appends the "@…" text DingTalk needs for each mention missing
// from the last part's content; an "@…" written early in the content ends
// up, as plain text, in an earlier part: write mentions at the end.
//
// Split cannot know a robot's security keywords: the worker checks them
// on each part and dead-letters a part that has none (missing_keyword)
// without posting it. For a markdown message put the keyword in the
// title, which every part repeats; a text message needs it in every part
// (repeat it on every few lines, or send markdown).
//
// Every part is validated before Split returns. A title or mentions so
// long that no content fits beside them is an error matching [ErrTooLarge].
func Split(e *Envelope, maxBytes int) ([]*Envelope, error) {
	return SplitFor(e, Limits{Body: maxBytes})
}

// SplitFor is [Split] under one platform's size rules ([Limits], as
// [Envelope.ValidateFor] checks them): each part fits the body limit
// and, when l sets them, the platform's own text or markdown limit, e.g.
// WeCom's 2,048 bytes of text. Split(e, n) is SplitFor(e, Limits{Body: n}).
func SplitFor(e *Envelope, l Limits) ([]*Envelope, error) {
	if e == nil {
		return nil, e.Validate()
	}
	probs := e.problems(l)
	if len(probs) == 0 {
		return []*Envelope{e}, nil
	}
	for _, p := range probs {
		if !errors.Is(p, ErrTooLarge) {
			return nil, errors.Join(probs...)
		}
	}
	// Only the size is wrong: probs is the one size problem.
	kind := e.Message.Kind()
	if kind != KindText && kind != KindMarkdown {
		return nil, annotate(probs, "; only text and markdown messages can be split, not "+kind)
	}
	if _, ok := e.Labels[LabelPart]; !ok && len(e.Labels) >= MaxLabels {
		return nil, &FieldError{Field: "labels", Problem: fmt.Sprintf(
			"%d labels: splitting adds the label %s, limit %d", len(e.Labels), LabelPart, MaxLabels)}
	}
	s := splitter{e: e, kind: kind, lim: l, limit: l.body()}
	for digits := 1; digits <= maxMarkerDigits; digits++ {
		chunks, err := s.chunks(digits)
		if err != nil {
			return nil, err
		}
		if len(strconv.Itoa(len(chunks))) <= digits {
			return s.parts(chunks)
		}
	}
	return nil, annotate(probs, "; too large to split into at most "+strings.Repeat("9", maxMarkerDigits)+" parts")
}

// splitter cuts the body of one envelope into chunks.
type splitter struct {
	e     *Envelope
	kind  string
	lim   Limits
	limit int // lim.body()
}

// body returns the content that is split: a text's content, a markdown
// message's text.
func (s *splitter) body() string {
	if s.kind == KindText {
		return s.e.Message.Text.Content
	}
	return s.e.Message.Markdown.Text
}

// marker is the part marker, "(i/n)".
func marker(i, n int) string {
	return "(" + strconv.Itoa(i) + "/" + strconv.Itoa(n) + ")"
}

// withChunk returns the message of a part holding chunk, with marker mk.
func (s *splitter) withChunk(chunk, mk string) Message {
	m := s.e.Message.clone()
	if s.kind == KindText {
		m.Text.Content = chunk + "\n" + mk
	} else {
		m.Markdown.Title += " " + mk
		m.Markdown.Text = chunk + "\n" + mk
	}
	return m
}

// chunks cuts the body into chunks that fit with a marker of the given
// number of digits (the widest such marker is measured, so every real one
// fits).
func (s *splitter) chunks(digits int) ([]string, error) {
	nines := strings.Repeat("9", digits)
	widest := "(" + nines + "/" + nines + ")"
	budget := s.lim.budget()
	mentions := mentionSize(s.e.At) // see postedSize
	fits := func(chunk string, last bool) bool {
		if len(chunk) > budget { // its JSON is at least as long
			return false
		}
		m := s.withChunk(chunk, widest)
		if !last {
			return contentSize(m, nil) <= budget && kindProblem(m, nil, s.lim) == nil
		}
		return contentSize(m, s.e.At)+mentions <= budget && kindProblem(m, s.e.At, s.lim) == nil
	}

	body := s.body()
	_, w := utf8.DecodeRuneInString(body)
	first := body[:w]
	switch {
	case !fits(first, false):
		return nil, s.noRoom("the title and markers leave")
	case !fits(first, true):
		return nil, s.noRoom("the mentions (at) leave")
	}

	var chunks []string
	rest := body
	for !fits(rest, true) {
		cut := s.longestFit(rest, fits)
		if cut == 0 { // cannot happen: one character fits (checked above)
			return nil, s.noRoom("the overhead leaves")
		}
		chunks = append(chunks, rest[:cut])
		rest = rest[cut:]
	}
	return append(chunks, rest), nil
}

// longestFit returns the longest prefix length of rest, shorter than rest,
// that fits as a part which is not the last: the last line end that does,
// else the last character boundary that does; 0 when none.
func (s *splitter) longestFit(rest string, fits func(string, bool) bool) int {
	// A prefix's JSON is at least as long as its bytes, so no prefix longer
	// than the limit fits.
	window := min(len(rest)-1, s.lim.budget())
	var lineEnds, runeEnds []int
	for k := 0; k < window; {
		_, w := utf8.DecodeRuneInString(rest[k:])
		k += w
		if k > window {
			break
		}
		runeEnds = append(runeEnds, k)
		if rest[k-1] == '\n' {
			lineEnds = append(lineEnds, k)
		}
	}
	for _, cands := range [][]int{lineEnds, runeEnds} {
		// fits is monotone in the prefix length: find the last fitting one.
		n := 0
		lo, hi := 0, len(cands)
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if fits(rest[:cands[mid]], false) {
				n, lo = cands[mid], mid+1
			} else {
				hi = mid
			}
		}
		if n > 0 {
			return n
		}
	}
	return 0
}

// annotate returns probs joined, each [*FieldError] copied with note
// appended to its problem, so that Split's errors, like Validate's, are
// field errors naming the field at fault.
func annotate(probs problems, note string) error {
	out := make([]error, len(probs))
	for i, p := range probs {
		if fe, ok := p.(*FieldError); ok {
			c := *fe
			c.Problem += note
			p = &c
		}
		out[i] = p
	}
	return errors.Join(out...)
}

// noRoom is the error for a message whose overhead leaves no room for
// content in a part.
func (s *splitter) noRoom(what string) error {
	return &FieldError{
		Field: "message",
		Problem: fmt.Sprintf("cannot split: %s no room for content within %d bytes (%d, less %d reserved)",
			what, s.lim.budget(), s.limit, s.lim.reserve()),
		tooLarge: true,
	}
}

// parts builds and validates the envelopes of the chunks.
func (s *splitter) parts(chunks []string) ([]*Envelope, error) {
	n := len(chunks)
	out := make([]*Envelope, n)
	for i, chunk := range chunks {
		p := s.e.part(i + 1)
		mk := marker(i+1, n)
		p.Message = s.withChunk(chunk, mk)
		if i < n-1 {
			p.At = nil
		}
		if p.Labels == nil {
			p.Labels = make(map[string]string, 1)
		}
		p.Labels[LabelPart] = strconv.Itoa(i+1) + "/" + strconv.Itoa(n)
		if probs := p.problems(s.lim); len(probs) > 0 {
			return nil, annotate(probs, fmt.Sprintf(" (in part %d/%d of the split message)", i+1, n))
		}
		out[i] = p
	}
	return out, nil
}

// part returns a copy of e as part i of a split message, with the
// deterministic ID "<id>.p<i>".
func (e *Envelope) part(i int) *Envelope {
	c := e.clone()
	c.ID = fitID(e.ID + ".p" + strconv.Itoa(i))
	return c
}
