package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/ledger"
)

// TestKeyHashTag pins the Redis key of an entry with and without a hash
// tag: a tag that is empty or holds a brace leaves the untagged form.
func TestKeyHashTag(t *testing.T) {
	tags := ledger.NewRobotTags(map[string]string{"alerts": "dingtalk:abc", "odd": "a}b"}).Tag
	l := ledger.NewRedis(nil, "p", time.Minute)
	tagged := ledger.NewRedis(nil, "p", time.Minute).WithHashTag(tags)
	tests := []struct {
		name, key, want string
		l               *ledger.Redis
	}{
		{name: "untagged", key: "alerts/1", want: "p:l:{alerts/1}", l: l},
		{name: "tagged by the robot's limiter key", key: "alerts/1", want: "p:l:{dingtalk:abc}alerts/1", l: tagged},
		{name: "robot without a tag", key: "other/1", want: "p:l:{other/1}", l: tagged},
		{name: "key without a robot", key: "plain", want: "p:l:{plain}", l: tagged},
		{name: "a tag with a brace is not used", key: "odd/1", want: "p:l:{odd/1}", l: tagged},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.l.Key(tc.key))
		})
	}
}

// TestRobotTagsReload: a replaced map (a configuration reload) gives the
// keys of robots added or changed their new tags at once.
func TestRobotTagsReload(t *testing.T) {
	tags := ledger.NewRobotTags(map[string]string{"a": "ka"})
	l := ledger.NewRedis(nil, "p", time.Minute).WithHashTag(tags.Tag)
	require.Equal(t, []string{"p:l:{ka}a/1", "p:l:{b/1}"}, []string{l.Key("a/1"), l.Key("b/1")})
	tags.Set(map[string]string{"a": "ka2", "b": "kb"})
	require.Equal(t, []string{"p:l:{ka2}a/1", "p:l:{kb}b/1"}, []string{l.Key("a/1"), l.Key("b/1")})
}

// TestRedisClusterHashTag runs every call of a tagged ledger on a real
// Redis Cluster: each entry lives on the master of its robot's tag, and
// Get, Claim, the recording calls and the marks all find it there.
func TestRedisClusterHashTag(t *testing.T) {
	ctx := context.Background()
	cluster := testenv.StartRedisCluster(t)
	tags := map[string]string{}
	masters := map[string]bool{}
	for i := range 8 {
		tags[fmt.Sprintf("r%d", i)] = fmt.Sprintf("team-%d.popo", i)
		masters[cluster.MasterOf(t, "{"+tags[fmt.Sprintf("r%d", i)]+"}")] = true
	}
	require.GreaterOrEqual(t, len(masters), 2)
	l := ledger.NewRedis(cluster.Client(t), "test-ledger-tag-"+testenv.Unique(), time.Minute).WithHashTag(ledger.NewRobotTags(tags).Tag)
	t0 := time.UnixMilli(1_700_000_000_000)
	for robot, tag := range tags {
		key := robot + "/m1"
		c, _, err := l.Claim(ctx, key, "w1", time.Minute, false)
		require.NoError(t, err)
		require.Equal(t, ledger.Claimed, c)
		_, err = l.RecordFailure(ctx, key, "w1", t0)
		require.NoError(t, err)
		_, err = l.RecordThrottle(ctx, key, "w1", time.Second)
		require.NoError(t, err)
		_, err = l.RecordWait(ctx, key, "w1", time.Second)
		require.NoError(t, err)
		require.NoError(t, l.Release(ctx, key, "w1"))
		require.NoError(t, l.MarkDelivered(ctx, key, "w1", "pm"))
		require.NoError(t, l.MarkPermanent(ctx, robot+"/m2", "w1", "gone"))

		direct := redis.NewClient(&redis.Options{Addr: cluster.MasterOf(t, "{"+tag+"}")})
		n, err := direct.Exists(ctx, l.Key(key), l.Key(robot+"/m2")).Result()
		_ = direct.Close()
		require.NoError(t, err)
		require.EqualValues(t, 2, n, "both entries on the master of %s", tag)

		st, err := l.Get(ctx, key)
		require.NoError(t, err)
		require.Equal(t, ledger.State{Failures: 1, FirstAttempt: st.FirstAttempt, Waits: 1, Waited: 2 * time.Second, Throttles: 1, Delivered: true, MessageID: "pm"}, st)
		st, err = l.Get(ctx, robot+"/m2")
		require.NoError(t, err)
		require.Equal(t, "gone", st.Permanent)
	}
}
