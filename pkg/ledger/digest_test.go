package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/ledger"
)

func TestDigests(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	for name, dg := range map[string]ledger.Digests{"redis": ledger.NewRedis(rdb, prefix, time.Minute), "memory": ledger.NewMemory()} {
		t.Run(name, func(t *testing.T) { testDigestPlans(t, dg) })
	}
	ttl, err := rdb.TTL(context.Background(), prefix+":dgk:{digest-1}").Result()
	require.NoError(t, err)
	require.InDelta(t, time.Minute.Seconds(), ttl.Seconds(), 2, "kept as long as the ledger's entries")
}

func testDigestPlans(t *testing.T, dg ledger.Digests) {
	ctx := context.Background()

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
}

func TestRedisDigestStats(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	var dg ledger.DigestNotes = ledger.NewRedis(rdb, prefix, time.Minute)
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

func ExampleDigests() {
	ctx := context.Background()
	var dg ledger.Digests = ledger.NewMemory() // ledger.NewRedis(rdb, "botrelay", 0) in production
	// Before posting digest-1, record which messages it folds.
	_ = dg.PlanDigest(ctx, "digest-1", []string{"alerts/a", "alerts/b"})
	// A worker that picks the messages up again finds the digest...
	ids, _ := dg.DigestsOf(ctx, []string{"alerts/b", "alerts/c"})
	fmt.Printf("%q\n", ids)
	// ...and rebuilds it from the same messages.
	keys, _ := dg.DigestKeys(ctx, ids[0])
	fmt.Println(keys)
	// Output:
	// ["digest-1" ""]
	// [alerts/a alerts/b]
}
