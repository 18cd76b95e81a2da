package limiter_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/limiter"
)

// Tools without the webhooks read a robot's window by name through the
// keys the workers published.
func TestKeyedInspector(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	lim, err := limiter.NewRedis(rdb, limiter.WithPrefix(prefix), limiter.WithRestartGuard(false))
	require.NoError(t, err)
	l := limiter.Limit{Max: 5, Window: time.Minute}
	for range 2 {
		d, err := lim.Reserve(ctx, "dingtalk-0123abcd", l)
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
	k := limiter.NewKeyedInspector(lim, rdb, prefix, time.Hour)
	st, err := k.Inspect(ctx, "ops", l)
	require.NoError(t, err)
	require.Zero(t, st.InWindow, "no key published yet: read under the name")

	require.NoError(t, limiter.PublishKeys(ctx, rdb, prefix, map[string]string{"ops": "dingtalk-0123abcd"}))
	k = limiter.NewKeyedInspector(lim, rdb, prefix, time.Hour)
	st, err = k.Inspect(ctx, "ops", l)
	require.NoError(t, err)
	require.Equal(t, 2, st.InWindow)
	keys, err := limiter.LookupKeys(ctx, rdb, prefix)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"ops": "dingtalk-0123abcd"}, keys)
}
