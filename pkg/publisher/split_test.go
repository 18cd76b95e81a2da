package publisher_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
)

// longText returns n numbered lines of 100 bytes.
func longText(n int) string {
	var b strings.Builder
	for i := range n {
		l := fmt.Sprintf("line %04d ", i)
		b.WriteString(l + strings.Repeat("x", 99-len(l)) + "\n")
	}
	return b.String()
}

func TestPublishSplit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	content := longText(500) // 50 kB: three parts
	env := text("ops", "report-1", content)
	env.At = &envelope.At{Mobiles: []string{"13800000000"}}

	// Part 1 was stored by an earlier attempt that failed after it: the
	// split publish stores the rest after it, in order.
	parts, err := envelope.Split(env, 0)
	require.NoError(t, err)
	require.Len(t, parts, 3)
	_, err = f.pub.Publish(ctx, parts[0])
	require.NoError(t, err)

	res, err := f.pub.PublishSplit(ctx, env)
	require.NoError(t, err)
	require.Equal(t, []publisher.Result{
		{ID: "report-1.p1", Robot: "ops", Ack: publisher.Ack{Sequence: 1, Duplicate: true}},
		{ID: "report-1.p2", Robot: "ops", Ack: publisher.Ack{Sequence: 2}},
		{ID: "report-1.p3", Robot: "ops", Ack: publisher.Ack{Sequence: 3}},
	}, res)

	// Stored in order on the robot's subject, each under its part id.
	var got strings.Builder
	for i := range 3 {
		m := f.stored(t, uint64(i+1))
		require.Equal(t, f.topo.OutSubject("ops"), m.Subject)
		id := fmt.Sprintf("report-1.p%d", i+1)
		require.Equal(t, "ops/"+id, m.Header.Get(jetstream.MsgIDHeader))
		part, err := envelope.Decode(m.Data)
		require.NoError(t, err)
		require.Equal(t, id, part.ID)
		require.Equal(t, fmt.Sprintf("%d/3", i+1), part.Labels[envelope.LabelPart])
		require.Equal(t, "db", part.Labels["team"])
		require.Equal(t, i == 2, part.At != nil, "mentions on the last part only")
		got.WriteString(strings.TrimSuffix(part.Message.Text.Content, fmt.Sprintf("\n(%d/3)", i+1)))
	}
	require.Equal(t, content, got.String())
	require.Equal(t, "report-1", env.ID, "the caller's envelope is not modified")
	require.Equal(t, content, env.Message.Text.Content)

	// A retry stores nothing new.
	res, err = f.pub.PublishSplit(ctx, env)
	require.NoError(t, err)
	for _, r := range res {
		require.True(t, r.Ack.Duplicate, r.ID)
	}
	require.Equal(t, uint64(3), f.count(t))
}

func TestPublishSplitFits(t *testing.T) {
	f := newFixture(t)
	res, err := f.pub.PublishSplit(context.Background(), text("ops", "short-1", "disk full"))
	require.NoError(t, err)
	require.Equal(t, []publisher.Result{{ID: "short-1", Robot: "ops", Ack: publisher.Ack{Sequence: 1}}}, res,
		"a message that fits keeps its id")
	require.Equal(t, "ops/short-1", f.stored(t, 1).Header.Get(jetstream.MsgIDHeader))
}

func TestPublishSplitRefused(t *testing.T) {
	big := strings.Repeat("x", envelope.MaxContentBytes)
	tests := []struct {
		name     string
		env      *envelope.Envelope
		tooLarge bool
	}{
		{"link", envelope.New("ops", envelope.Message{Link: &envelope.Link{Title: "t", Text: big, MessageURL: "https://e.com"}}), true},
		{"invalid robot", text("a.b", "x-1", big), true},
		{"empty text", text("ops", "x-1", ""), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			res, err := f.pub.PublishSplit(context.Background(), tt.env)
			require.Nil(t, res)
			require.ErrorIs(t, err, envelope.ErrInvalid)
			if tt.tooLarge {
				require.ErrorIs(t, err, envelope.ErrTooLarge)
			}
			require.Zero(t, f.count(t), "nothing is stored")
		})
	}
}

func TestPublishSplitStopsAtFailure(t *testing.T) {
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js) // never ensured: every publish fails
	pub, err := publisher.New(js, topo)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	res, err := pub.PublishSplit(ctx, text("ops", "r-1", longText(300)))
	require.ErrorIs(t, err, publisher.ErrNoStream)
	require.ErrorContains(t, err, "part 1 of 2")
	require.Len(t, res, 2)
	require.ErrorIs(t, res[0].Err, publisher.ErrNoStream)
	require.Equal(t, "r-1.p2", res[1].ID)
	require.ErrorContains(t, res[1].Err, "not published: an earlier part failed")
	require.NotErrorIs(t, res[1].Err, publisher.ErrNoStream, "the later part was not tried")
}
