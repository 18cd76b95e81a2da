package publisher_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/stream"
)

type fixture struct {
	js   jetstream.JetStream
	topo stream.Topology
	pub  *publisher.Publisher
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(context.Background(), js))
	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	return fixture{js: js, topo: topo, pub: pub}
}

// stored returns the message at seq of the outbound stream.
func (f fixture) stored(t *testing.T, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := f.js.Stream(context.Background(), f.topo.OutStream())
	require.NoError(t, err)
	m, err := s.GetMsg(context.Background(), seq)
	require.NoError(t, err)
	return m
}

// count returns the number of messages in the outbound stream.
func (f fixture) count(t *testing.T) uint64 {
	t.Helper()
	s, err := f.js.Stream(context.Background(), f.topo.OutStream())
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

func text(robot, id, content string) *envelope.Envelope {
	return envelope.New(robot, envelope.Message{Text: &envelope.Text{Content: content}}, envelope.WithID(id),
		envelope.WithLabels(map[string]string{"team": "db"}))
}

func TestNewOptions(t *testing.T) {
	_, err := publisher.New(nil, stream.Topology{Prefix: "a.b"})
	require.ErrorIs(t, err, stream.ErrInvalidPrefix)
	_, err = publisher.New(nil, stream.Topology{}, publisher.WithDefaultTimeout(0))
	require.ErrorIs(t, err, publisher.ErrInvalidOption)
	_, err = publisher.New(nil, stream.Topology{}, publisher.WithDefaultTimeout(time.Second))
	require.NoError(t, err)
}

func TestPublish(t *testing.T) {
	f := newFixture(t)
	env := text("ops", "alert-1", "disk full on db-3")
	ack, err := f.pub.Publish(context.Background(), env) // no deadline: the default applies
	require.NoError(t, err)
	require.Equal(t, publisher.Ack{Sequence: 1}, ack)

	m := f.stored(t, ack.Sequence)
	require.Equal(t, f.topo.OutSubject("ops"), m.Subject)
	require.Equal(t, "ops/alert-1", m.Header.Get(jetstream.MsgIDHeader), "the robot-scoped envelope id is the dedup id")
	want, err := envelope.Encode(env)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(m.Data))
	got, err := envelope.Decode(m.Data)
	require.NoError(t, err)
	require.Equal(t, env.ID, got.ID)
	require.Equal(t, env.Message, got.Message)
	require.Equal(t, env.Labels, got.Labels)
}

func TestPublishDuplicate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first, err := f.pub.Publish(ctx, text("ops", "dup-1", "once"))
	require.NoError(t, err)
	require.False(t, first.Duplicate)
	again, err := f.pub.Publish(ctx, text("ops", "dup-1", "once"))
	require.NoError(t, err)
	require.Equal(t, publisher.Ack{Sequence: first.Sequence, Duplicate: true}, again)
	require.Equal(t, uint64(1), f.count(t))
}

func TestPublishInvalid(t *testing.T) {
	tests := []struct {
		name string
		env  *envelope.Envelope
	}{
		{name: "no robot", env: text("", "x-1", "hi")},
		{name: "robot with a dot", env: text("a.b", "x-1", "hi")},
		{name: "empty text", env: text("ops", "x-1", "")},
		{name: "bad id", env: text("ops", "has space", "hi")},
		{name: "nil", env: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			_, err := f.pub.Publish(context.Background(), tt.env)
			require.ErrorIs(t, err, envelope.ErrInvalid)
			require.Zero(t, f.count(t), "nothing is stored")
		})
	}
}

func TestPublishNoStream(t *testing.T) {
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js) // never ensured
	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err = pub.Publish(ctx, text("ops", "n-1", "hi"))
	require.ErrorIs(t, err, publisher.ErrNoStream)
	require.ErrorIs(t, err, jetstream.ErrNoStreamResponse)
	require.ErrorContains(t, err, topo.OutStream())
	require.ErrorContains(t, err, topo.OutSubject("ops"))

	res, err := pub.PublishAll(ctx, []*envelope.Envelope{text("ops", "n-2", "hi")})
	require.ErrorIs(t, err, publisher.ErrNoStream)
	require.Len(t, res, 1)
	require.ErrorIs(t, res[0].Err, publisher.ErrNoStream)
	require.NoError(t, ctx.Err(), "failed at once, not by timing out")
}

func TestPublishAll(t *testing.T) {
	f := newFixture(t)
	envs := []*envelope.Envelope{
		text("ops", "b-1", "one"),
		text("dev", "b-2", "two"),
		text("ops", "b-3", ""), // invalid
		nil,                    // invalid
		text("qa", "b-5", "five"),
		text("ops", "b-1", "one again"), // duplicate of the first
	}
	res, err := f.pub.PublishAll(context.Background(), envs)
	require.Error(t, err)
	require.ErrorIs(t, err, envelope.ErrInvalid)
	require.ErrorContains(t, err, "envelope 2:")
	require.ErrorContains(t, err, "envelope 3:")
	require.NotContains(t, err.Error(), "envelope 0:")
	require.Len(t, res, len(envs))

	require.Equal(t, publisher.Result{ID: "b-1", Robot: "ops", Ack: publisher.Ack{Sequence: 1}}, res[0])
	require.Equal(t, publisher.Result{ID: "b-2", Robot: "dev", Ack: publisher.Ack{Sequence: 2}}, res[1])
	require.ErrorIs(t, res[2].Err, envelope.ErrInvalid)
	require.Equal(t, "b-3", res[2].ID)
	require.Zero(t, res[2].Ack)
	require.ErrorIs(t, res[3].Err, envelope.ErrInvalid)
	require.Equal(t, publisher.Result{ID: "b-5", Robot: "qa", Ack: publisher.Ack{Sequence: 3}}, res[4])
	require.Equal(t, publisher.Result{ID: "b-1", Robot: "ops", Ack: publisher.Ack{Sequence: 1, Duplicate: true}}, res[5])

	require.Equal(t, uint64(3), f.count(t))
	require.Equal(t, f.topo.OutSubject("qa"), f.stored(t, 3).Subject)
	require.Equal(t, "qa/b-5", f.stored(t, 3).Header.Get(jetstream.MsgIDHeader))

	// All valid: no error.
	res, err = f.pub.PublishAll(context.Background(), []*envelope.Envelope{text("ops", "b-7", "seven")})
	require.NoError(t, err)
	require.Equal(t, uint64(4), res[0].Ack.Sequence)
}

func TestPublishAllCanceled(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := f.pub.PublishAll(ctx, []*envelope.Envelope{text("ops", "c-1", "x")})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, res[0].Err, context.Canceled)
}

func TestFanOut(t *testing.T) {
	f := newFixture(t)
	env := text("ignored", "deploy-9", "deploy done")
	robots := []string{"ops", "dev", "qa"}
	res, err := f.pub.FanOut(context.Background(), env, robots)
	require.NoError(t, err)
	require.Len(t, res, 3)
	for i, robot := range robots {
		require.Equal(t, publisher.Result{ID: "deploy-9." + robot, Robot: robot, Ack: publisher.Ack{Sequence: uint64(i + 1)}}, res[i])
		m := f.stored(t, res[i].Ack.Sequence)
		require.Equal(t, f.topo.OutSubject(robot), m.Subject)
		require.Equal(t, robot+"/deploy-9."+robot, m.Header.Get(jetstream.MsgIDHeader))
		got, err := envelope.Decode(m.Data)
		require.NoError(t, err)
		require.Equal(t, robot, got.Robot)
		require.Equal(t, "deploy-9."+robot, got.ID)
		require.Equal(t, env.Message, got.Message)
	}
	require.Equal(t, "ignored", env.Robot, "the caller's envelope is not modified")
	require.Equal(t, "deploy-9", env.ID)

	// Repeating the fan-out stores nothing new; a bad robot fails alone.
	res, err = f.pub.FanOut(context.Background(), env, []string{"ops", "bad robot", "dev"})
	require.ErrorIs(t, err, envelope.ErrInvalid)
	require.True(t, res[0].Ack.Duplicate)
	require.ErrorIs(t, res[1].Err, envelope.ErrInvalid)
	require.Equal(t, "bad robot", res[1].Robot)
	require.True(t, res[2].Ack.Duplicate)
	require.Equal(t, uint64(3), f.count(t))

	_, err = f.pub.FanOut(context.Background(), nil, robots)
	require.ErrorIs(t, err, envelope.ErrInvalid)
}

func TestDefaultTimeout(t *testing.T) {
	// A server that never answers: publishes to a subject nobody stores
	// would fail at once (no responders), so subscribe to it and stay
	// silent, as a stalled server would.
	nc, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js)
	sub, err := nc.SubscribeSync(topo.OutSubject("ops"))
	require.NoError(t, err)
	defer sub.Unsubscribe()
	pub, err := publisher.New(js, topo, publisher.WithDefaultTimeout(200*time.Millisecond))
	require.NoError(t, err)

	_, err = pub.Publish(context.Background(), text("ops", "t-1", "x"))
	require.ErrorIs(t, err, context.DeadlineExceeded)

	res, err := pub.PublishAll(context.Background(), []*envelope.Envelope{text("ops", "t-2", "x")})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, res[0].Err, context.DeadlineExceeded)
}
