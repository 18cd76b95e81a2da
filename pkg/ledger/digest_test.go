package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/ledger"
)

func TestRedisDigests(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	l := ledger.NewRedis(rdb, prefix, time.Minute)
	var dg ledger.Digests = l

	got, err := dg.DigestsOf(ctx, []string{"r/a", "r/b"})
	require.NoError(t, err)
	require.Equal(t, []string{"", ""}, got, "nothing planned yet")
	keys, err := dg.DigestKeys(ctx, "digest-1")
	require.NoError(t, err)
	require.Nil(t, keys)

	require.NoError(t, dg.PlanDigest(ctx, "digest-1", []string{"r/a", "r/b", "r/c"}))
	require.NoError(t, dg.PlanDigest(ctx, "digest-2", []string{"r/d"}))
	got, err = dg.DigestsOf(ctx, []string{"r/c", "r/x", "r/a", "r/d"})
	require.NoError(t, err)
	require.Equal(t, []string{"digest-1", "", "digest-1", "digest-2"}, got)
	keys, err = dg.DigestKeys(ctx, "digest-1")
	require.NoError(t, err)
	require.Equal(t, []string{"r/a", "r/b", "r/c"}, keys, "in order")
	ttl, err := rdb.TTL(ctx, prefix+":dgk:{digest-1}").Result()
	require.NoError(t, err)
	require.InDelta(t, time.Minute.Seconds(), ttl.Seconds(), 2, "kept as long as the ledger's entries")

	st, err := ledger.ReadDigestStats(ctx, rdb, prefix, "r")
	require.NoError(t, err)
	require.Equal(t, ledger.DigestStats{}, st)
	at := time.UnixMilli(1_772_000_000_000)
	require.NoError(t, dg.NoteDigest(ctx, "r", 37, 4200, at.Add(-time.Minute)))
	require.NoError(t, dg.NoteDigest(ctx, "r", 5, 900, at))
	st, err = ledger.ReadDigestStats(ctx, rdb, prefix, "r")
	require.NoError(t, err)
	require.Equal(t, ledger.DigestStats{Folded: 42, Digests: 2, LastItems: 5, LastBytes: 900, LastAt: at}, st)
}
