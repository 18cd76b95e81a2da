package deadletter_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/deadletter"
)

// A dead letter too large for a NATS message (1 MiB by default) is stored
// truncated, with the original's size, hash and sequence: any message the
// worker received can be dead-lettered.
func TestPublishTruncatesOversizeRecord(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t))
	ctx := context.Background()
	huge := f.record("ops", 11)
	huge.Envelope.Labels = map[string]string{"big": strings.Repeat("x", 1<<20-100)} // the envelope itself just fits
	huge.ErrMsg = strings.Repeat("e", 5000)
	origEnv, err := json.Marshal(huge.Envelope)
	require.NoError(t, err)

	undecodable := deadletter.Record{Raw: []byte(strings.Repeat("\xff", 800_000)), Robot: "ops", Reason: deadletter.ReasonDecode,
		Subject: f.topo.OutSubject("ops"), Sequence: 12} // base64 makes it 1.07 MB
	small := f.record("ops", 13)

	tests := []struct {
		name      string
		rec       deadletter.Record
		orig      []byte
		truncated bool
	}{
		{name: "envelope with huge labels", rec: huge, orig: origEnv, truncated: true},
		{name: "undecodable raw payload over 786 KB", rec: undecodable, orig: undecodable.Raw, truncated: true},
		{name: "a record that fits is whole", rec: small},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, deadletter.Publish(ctx, f.js, f.topo, tt.rec))
			e, err := deadletter.Get(ctx, f.js, f.topo, uint64(i+1))
			require.NoError(t, err)
			got := e.Record
			require.Equal(t, tt.truncated, got.Truncated)
			require.Equal(t, tt.rec.Sequence, got.Sequence, "the original's stream sequence")
			require.Equal(t, tt.rec.Reason, got.Reason)
			if !tt.truncated {
				require.NotNil(t, got.Envelope)
				require.Zero(t, got.OriginalSize)
				return
			}
			require.Nil(t, got.Envelope)
			sum := sha256.Sum256(tt.orig)
			require.Equal(t, hex.EncodeToString(sum[:]), got.OriginalSHA256)
			require.Equal(t, len(tt.orig), got.OriginalSize)
			require.NotEmpty(t, got.Raw)
			require.Less(t, len(got.Raw), len(tt.orig))
			require.Equal(t, tt.orig[:len(got.Raw)], got.Raw, "a prefix of the original")
			require.LessOrEqual(t, len(got.ErrMsg), 1024+len("…"))

			// Publishing it again (a redelivered original) stores nothing new.
			require.NoError(t, deadletter.Publish(ctx, f.js, f.topo, tt.rec))
			require.Equal(t, uint64(i+1), f.dlqCount(t))

			_, err = deadletter.Replay(ctx, f.js, f.topo, e.Seq, false)
			require.ErrorIs(t, err, deadletter.ErrNotReplayable)
		})
	}
}
