package main

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/botrelay/botrelay/pkg/deadletter"
)

// A dead letter holds text from outside: a platform's errmsg, a producer's
// content. Printed raw, control characters in it would drive the
// operator's terminal (ANSI escape codes, cursor moves, bidi overrides).

// unsafeRune reports whether r must not reach a terminal as is: C0 and C1
// controls, DEL, bidirectional formatting, and invalid UTF-8.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == utf8.RuneError
}

// escapeControls returns s with whitespace controls (tab, newline, …) as
// spaces and every other unsafe rune written as \xHH or \uHHHH.
func escapeControls(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		r, size := utf8.DecodeRuneInString(s[i:])
		w = size
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f':
			b.WriteByte(' ')
		case unsafeRune(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// jsonSafeWriter writes JSON documents with the unsafe runes that
// encoding/json leaves alone (DEL, C1 controls, bidi formatting) as \u
// escapes, which mean the same to a JSON reader. Each Write must hold
// whole runes, as encoding/json's do.
type jsonSafeWriter struct{ w io.Writer }

func (j jsonSafeWriter) Write(p []byte) (int, error) {
	s := string(p)
	if !strings.ContainsFunc(s, func(r rune) bool { return unsafeRune(r) && r >= 0x20 && r != utf8.RuneError }) {
		return j.w.Write(p)
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeRune(r) && r >= 0x20 && r != utf8.RuneError {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	if _, err := io.WriteString(j.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// skipUndecodable reports each dead letter that could not be decoded on
// w and returns the others: one bad record does not stop a listing or a
// replay of all.
func skipUndecodable(w io.Writer, entries []deadletter.Entry) []deadletter.Entry {
	out := entries[:0:0]
	for _, e := range entries {
		if e.Err != nil {
			fmt.Fprintf(w, "seq %d: skipped: %s\n", e.Seq, escapeControls(e.Err.Error()))
			continue
		}
		out = append(out, e)
	}
	return out
}
