package publisher_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
)

// groups is a directory of two groups: all-sre (two robots and a pool)
// and db (one of them).
func groups(name string) ([]string, bool) {
	switch name {
	case "all-sre":
		return []string{"sre-bj", "sre-sh", "oncall"}, true
	case "db":
		return []string{"sre-sh"}, true
	}
	return nil, false
}

func groupFixture(t *testing.T) fixture {
	t.Helper()
	f := newFixture(t)
	pub, err := publisher.New(f.js, f.topo, publisher.WithGroups(groups))
	require.NoError(t, err)
	f.pub = pub
	return f
}

// requireStored checks the stream holds exactly want, in order: each
// envelope on its target's subject under the robot-scoped dedup id.
func requireStored(t *testing.T, f fixture, base *envelope.Envelope, want []string) {
	t.Helper()
	require.Equal(t, uint64(len(want)), f.count(t))
	for i, w := range want {
		m := f.stored(t, uint64(i+1))
		require.Equal(t, f.topo.OutSubject(w), m.Subject, "message %d", i+1)
		id := base.ID + "." + w
		require.Equal(t, w+"/"+id, m.Header.Get(jetstream.MsgIDHeader))
		got, err := envelope.Decode(m.Data)
		require.NoError(t, err)
		require.Equal(t, w, got.Robot)
		require.Equal(t, id, got.ID)
		require.Equal(t, base.Message, got.Message)
		require.Equal(t, base.Labels, got.Labels)
	}
}

func TestSendGroup(t *testing.T) {
	f := groupFixture(t)
	ctx := context.Background()
	env := text("all-sre", "deploy-7", "deploy done")
	res, err := f.pub.Send(ctx, env)
	require.NoError(t, err)
	require.Equal(t, []publisher.Result{
		{ID: "deploy-7.sre-bj", Robot: "sre-bj", Ack: publisher.Ack{Sequence: 1}},
		{ID: "deploy-7.sre-sh", Robot: "sre-sh", Ack: publisher.Ack{Sequence: 2}},
		{ID: "deploy-7.oncall", Robot: "oncall", Ack: publisher.Ack{Sequence: 3}},
	}, res)
	requireStored(t, f, env, []string{"sre-bj", "sre-sh", "oncall"})
	require.Equal(t, "all-sre", env.Robot, "the caller's envelope is not modified")

	// A retried send is deduplicated member by member.
	res, err = f.pub.Send(ctx, env)
	require.NoError(t, err)
	require.Len(t, res, 3)
	for i, r := range res {
		require.Equal(t, publisher.Ack{Sequence: uint64(i + 1), Duplicate: true}, r.Ack)
	}
	require.Equal(t, uint64(3), f.count(t))

	// A robot (or a pool) is sent as is, under its own id.
	res, err = f.pub.Send(ctx, text("oncall", "page-1", "db down"))
	require.NoError(t, err)
	require.Equal(t, []publisher.Result{{ID: "page-1", Robot: "oncall", Ack: publisher.Ack{Sequence: 4}}}, res)
	m := f.stored(t, 4)
	require.Equal(t, f.topo.OutSubject("oncall"), m.Subject)
	require.Equal(t, "oncall/page-1", m.Header.Get(jetstream.MsgIDHeader))
}

func TestFanOutExpandsGroups(t *testing.T) {
	f := groupFixture(t)
	env := text("_", "fan-1", "maintenance at 22:00")
	// sre-sh is named directly and through both groups: one copy, at its
	// first place.
	res, err := f.pub.FanOut(context.Background(), env, []string{"dev", "db", "all-sre", "sre-sh"})
	require.NoError(t, err)
	require.Equal(t, []string{"dev", "sre-sh", "sre-bj", "oncall"}, robotsOf(res))
	requireStored(t, f, env, []string{"dev", "sre-sh", "sre-bj", "oncall"})
	require.Equal(t, []string{"dev", "sre-sh", "sre-bj", "oncall"}, f.pub.Targets("dev", "db", "all-sre", "sre-sh"))
}

func TestGroupRefusedWhereOneEnvelope(t *testing.T) {
	f := groupFixture(t)
	ctx := context.Background()
	_, err := f.pub.Publish(ctx, text("all-sre", "g-1", "x"))
	require.ErrorIs(t, err, publisher.ErrGroup)
	require.ErrorContains(t, err, `envelope "g-1" for "all-sre"`)
	res, err := f.pub.PublishAll(ctx, []*envelope.Envelope{text("ops", "g-2", "x"), text("db", "g-3", "x")})
	require.ErrorIs(t, err, publisher.ErrGroup)
	require.NoError(t, res[0].Err)
	require.ErrorIs(t, res[1].Err, publisher.ErrGroup)
	_, err = f.pub.PublishSplit(ctx, text("db", "g-4", "x"))
	require.ErrorIs(t, err, publisher.ErrGroup)
	require.Equal(t, uint64(1), f.count(t), "only the robot's envelope is stored")

	// Without WithGroups a name is a robot.
	plain := newFixture(t)
	_, err = plain.pub.Publish(ctx, text("all-sre", "g-5", "x"))
	require.NoError(t, err)
	require.False(t, plain.pub.IsGroup("all-sre"))
	_, err = publisher.New(nil, plain.topo, publisher.WithGroups(nil))
	require.ErrorIs(t, err, publisher.ErrInvalidOption)
}

func robotsOf(res []publisher.Result) []string {
	out := make([]string, len(res))
	for i, r := range res {
		out[i] = r.Robot
	}
	return out
}

func TestFanOutRepeatedRobot(t *testing.T) {
	f := newFixture(t) // without groups too, a repeated name gets one copy
	res, err := f.pub.FanOut(context.Background(), text("_", "rep-1", "x"), []string{"ops", "dev", "ops"})
	require.NoError(t, err)
	require.Equal(t, []string{"ops", "dev"}, robotsOf(res))
	require.Equal(t, uint64(2), f.count(t))
}
