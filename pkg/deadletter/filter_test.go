package deadletter_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/envelope"
)

func TestFilterMatch(t *testing.T) {
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	rec := deadletter.Record{
		Envelope: envelope.New("ops", envelope.Message{Text: &envelope.Text{Content: "Disk full on db-3"}}, envelope.WithID("m-1")),
		Robot:    "ops", Reason: deadletter.ReasonPermanent, ErrCode: 310000, ErrMsg: "keywords not in content",
		Detail: "security check failed", DeadAt: at,
	}
	tests := []struct {
		name string
		f    deadletter.Filter
		want bool
	}{
		{name: "zero matches all", f: deadletter.Filter{}, want: true},
		{name: "robot", f: deadletter.Filter{Robot: "ops"}, want: true},
		{name: "other robot", f: deadletter.Filter{Robot: "dev"}},
		{name: "reason", f: deadletter.Filter{Reason: deadletter.ReasonPermanent}, want: true},
		{name: "other reason", f: deadletter.Filter{Reason: deadletter.ReasonExpired}},
		{name: "errcode", f: deadletter.Filter{ErrCode: 310000, HasErrCode: true}, want: true},
		{name: "other errcode", f: deadletter.Filter{ErrCode: -1, HasErrCode: true}},
		{name: "errcode 0 means none", f: deadletter.Filter{HasErrCode: true}},
		{name: "since inclusive", f: deadletter.Filter{Since: at}, want: true},
		{name: "since after", f: deadletter.Filter{Since: at.Add(time.Second)}},
		{name: "until exclusive", f: deadletter.Filter{Until: at}},
		{name: "until after", f: deadletter.Filter{Until: at.Add(time.Second)}, want: true},
		{name: "text in content, any case", f: deadletter.Filter{Text: "DB-3"}, want: true},
		{name: "text in errmsg", f: deadletter.Filter{Text: "keywords"}, want: true},
		{name: "text in envelope id", f: deadletter.Filter{Text: "m-1"}, want: true},
		{name: "text absent", f: deadletter.Filter{Text: "nothing like it"}},
		{name: "all together", f: deadletter.Filter{Robot: "ops", Reason: deadletter.ReasonPermanent, ErrCode: 310000, HasErrCode: true,
			Since: at.Add(-time.Hour), Until: at.Add(time.Hour), Text: "disk"}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.f.Match(rec))
		})
	}
}

func TestParseFilter(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name                                    string
		robot, reason, errcode, since, until, q string
		want                                    deadletter.Filter
		err                                     string
	}{
		{name: "empty", want: deadletter.Filter{}},
		{name: "every field", robot: "ops", reason: "expired", errcode: "-1", since: "2h", until: "2026-12-01T09:30:00Z", q: "disk",
			want: deadletter.Filter{Robot: "ops", Reason: deadletter.ReasonExpired, ErrCode: -1, HasErrCode: true,
				Since: now.Add(-2 * time.Hour), Until: time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC), Text: "disk"}},
		{name: "bad reason", reason: "lost", err: `unknown reason "lost"`},
		{name: "bad errcode", errcode: "x", err: `errcode "x" is not an integer`},
		{name: "bad since", since: "yesterday", err: `since "yesterday"`},
		{name: "negative duration", until: "-5m", err: `until "-5m"`},
		{name: "since after until", since: "1h", until: "2h", err: "must be before until"},
		{name: "wildcard robot", robot: "ops.*", err: "not a robot name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := deadletter.ParseFilter(tt.robot, tt.reason, tt.errcode, tt.since, tt.until, tt.q, now)
			if tt.err != "" {
				require.ErrorIs(t, err, deadletter.ErrInvalidFilter)
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, f)
		})
	}
}

func TestListFiltered(t *testing.T) {
	f := newFixture(t, testenv.NATSURL(t))
	ctx := context.Background()
	for i, robot := range []string{"ops", "dev", "ops", "ops"} {
		rec := f.record(robot, uint64(i+1))
		if i == 2 {
			rec.Reason, rec.ErrCode = deadletter.ReasonPermanent, 310000
		}
		require.NoError(t, deadletter.Publish(ctx, f.js, f.topo, rec))
	}
	seqs := func(es []deadletter.Entry) []uint64 {
		out := []uint64{}
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	es, err := deadletter.ListFiltered(ctx, f.js, f.topo, deadletter.Filter{Robot: "ops"}, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 3, 4}, seqs(es))
	es, err = deadletter.ListFiltered(ctx, f.js, f.topo, deadletter.Filter{Robot: "ops", Reason: deadletter.ReasonExhausted}, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 4}, seqs(es))
	es, err = deadletter.ListFiltered(ctx, f.js, f.topo, deadletter.Filter{ErrCode: 310000, HasErrCode: true}, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{3}, seqs(es))
	es, err = deadletter.ListFiltered(ctx, f.js, f.topo, deadletter.Filter{Reason: deadletter.ReasonExhausted}, 2)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2}, seqs(es), "limit counts matches")
	_, err = deadletter.ListFiltered(ctx, f.js, f.topo, deadletter.Filter{Reason: "nope"}, 0)
	require.ErrorIs(t, err, deadletter.ErrInvalidFilter)
}
