package stream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/stream"
)

func TestLimitsResolved(t *testing.T) {
	d := stream.DefaultLimits()
	tests := []struct {
		name string
		in   stream.Limits
		want stream.Limits
	}{
		{name: "zero: defaults", want: d},
		{name: "set", in: stream.Limits{OutMaxBytes: 5, OutMaxAge: time.Hour, OutMaxMsgsPerRobot: 7, DLQMaxBytes: 9, DLQMaxAge: time.Minute, InMaxBytes: 11, InMaxAge: time.Second},
			want: stream.Limits{OutMaxBytes: 5, OutMaxAge: time.Hour, OutMaxMsgsPerRobot: 7, DLQMaxBytes: 9, DLQMaxAge: time.Minute, InMaxBytes: 11, InMaxAge: time.Second}},
		{name: "negative: no limit", in: stream.Limits{OutMaxBytes: -5, OutMaxAge: -1, OutMaxMsgsPerRobot: -1, DLQMaxBytes: -1, DLQMaxAge: -1, InMaxBytes: -1, InMaxAge: -1},
			want: stream.Limits{OutMaxBytes: -1, OutMaxMsgsPerRobot: -1, DLQMaxBytes: -1, InMaxBytes: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.in.Resolved())
		})
	}
}

func TestEnsureLimits(t *testing.T) {
	eachServer(t, func(t *testing.T, _ *nats.Conn, js jetstream.JetStream) {
		ctx := context.Background()
		topo := testenv.Topology(t, js)
		topo.Limits = stream.Limits{OutMaxBytes: 1 << 20, OutMaxAge: time.Hour, OutMaxMsgsPerRobot: 3, DLQMaxBytes: 2 << 20, DLQMaxAge: 48 * time.Hour}
		require.NoError(t, topo.Ensure(ctx, js))
		out := streamInfo(t, js, topo.OutStream()).Config
		require.Equal(t, int64(1<<20), out.MaxBytes)
		require.Equal(t, time.Hour, out.MaxAge)
		require.Equal(t, int64(3), out.MaxMsgsPerSubject)
		dlq := streamInfo(t, js, topo.DLQStream()).Config
		require.Equal(t, int64(2<<20), dlq.MaxBytes)
		require.Equal(t, 48*time.Hour, dlq.MaxAge)
		in := streamInfo(t, js, topo.InStream()).Config
		require.Equal(t, int64(256<<20), in.MaxBytes)
		require.Equal(t, 7*24*time.Hour, in.MaxAge)
		require.Equal(t, stream.InDuplicateWindow, in.Duplicates)
		require.Equal(t, []string{topo.InSubject("*")}, in.Subjects)
		require.Equal(t, jetstream.LimitsPolicy, in.Retention)

		// A robot at its cap: the fourth publish is refused, with an error
		// IsStreamFull recognises; another robot is not affected.
		for i := range 3 {
			_, err := js.Publish(ctx, topo.OutSubject("ops"), []byte(fmt.Sprint(i)))
			require.NoError(t, err)
		}
		_, err := js.Publish(ctx, topo.OutSubject("ops"), []byte("3"))
		require.Error(t, err)
		require.True(t, stream.IsStreamFull(err), "%v", err)
		_, err = js.Publish(ctx, topo.OutSubject("dev"), []byte("0"))
		require.NoError(t, err)
		require.EqualValues(t, 4, streamInfo(t, js, topo.OutStream()).State.Msgs, "nothing dropped: the first three are kept")

		// A new release changes the limits in place.
		topo.Limits.OutMaxMsgsPerRobot = 10
		require.NoError(t, topo.Ensure(ctx, js))
		require.Equal(t, int64(10), streamInfo(t, js, topo.OutStream()).Config.MaxMsgsPerSubject)
		_, err = js.Publish(ctx, topo.OutSubject("ops"), []byte("3"))
		require.NoError(t, err)
		require.False(t, stream.IsStreamFull(nil))
	})
}

// Limits left zero take the defaults; negative ones mean no limit.
func ExampleLimits_Resolved() {
	l := stream.Limits{OutMaxMsgsPerRobot: 5000, DLQMaxAge: -1}.Resolved()
	fmt.Println(l.OutMaxBytes>>20, "MiB,", l.OutMaxAge, l.OutMaxMsgsPerRobot, "per robot; dead letters kept", l.DLQMaxAge)
	// Output: 512 MiB, 168h0m0s 5000 per robot; dead letters kept 0s
}
