package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/ledger"
)

// digestStatus is a digest robot's statistics, as its workers keep them.
type digestStatus struct {
	// Folded is the messages posted in digests, Digests the digests.
	Folded  int64 `json:"folded"`
	Digests int64 `json:"digests"`
	// LastItems, LastBytes and LastAt describe the last digest (LastAt
	// empty when none was posted yet).
	LastItems int    `json:"last_items"`
	LastBytes int    `json:"last_bytes"`
	LastAt    string `json:"last_at,omitempty"`
	Error     string `json:"error,omitempty"`
}

// readDigest fills in row's digest statistics when rb has a digest.
func readDigest(ctx context.Context, rdb redis.Cmdable, prefix string, row *robotStatus, rb config.Robot) {
	if rb.Digest == nil {
		return
	}
	st, err := ledger.ReadDigestStats(ctx, rdb, prefix, rb.Name)
	if err != nil {
		row.Digest = &digestStatus{Error: err.Error()}
		return
	}
	row.Digest = &digestStatus{Folded: st.Folded, Digests: st.Digests, LastItems: st.LastItems, LastBytes: st.LastBytes}
	if !st.LastAt.IsZero() {
		row.Digest.LastAt = st.LastAt.UTC().Format(time.RFC3339)
	}
}

// writeDigests prints, after a blank line, one line per digest robot;
// nothing without one.
func writeDigests(w io.Writer, rows []robotStatus) {
	blank := false
	for _, r := range rows {
		if r.Digest != nil && !blank {
			fmt.Fprintln(w)
			blank = true
		}
		d := r.Digest
		switch {
		case d == nil:
		case d.Error != "":
			fmt.Fprintf(w, "digest %s: unknown (%s)\n", oneLine(r.Robot, 64), d.Error)
		case d.Digests == 0:
			fmt.Fprintf(w, "digest %s: nothing folded yet\n", oneLine(r.Robot, 64))
		default:
			fmt.Fprintf(w, "digest %s: %d messages folded in %d digests; last: %d messages, %d bytes, at %s\n",
				oneLine(r.Robot, 64), d.Folded, d.Digests, d.LastItems, d.LastBytes, d.LastAt)
		}
	}
}
