package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/console"
	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/robotsim"
)

type deadAnswer struct {
	Total   int `json:"total"`
	Entries []struct {
		Seq    uint64            `json:"seq"`
		Record deadletter.Record `json:"record"`
	} `json:"entries"`
}

type actionAnswer struct {
	DryRun  bool           `json:"dry_run"`
	Matched int            `json:"matched"`
	Counts  map[string]int `json:"counts"`
	Items   []struct {
		Seq    uint64 `json:"seq"`
		Status string `json:"status"`
		ID     string `json:"id"`
	} `json:"items"`
}

// seed writes dead letters: seq 1 ops permanent 310000 "disk full" at
// 08:00, seq 2 ops expired at 09:00, seq 3 dev exhausted -1 "build red"
// at 10:00, seq 4 dev undecodable at 11:00 (2026-12-01 UTC).
func (r *rig) seed() {
	r.t.Helper()
	ctx := context.Background()
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	env := func(robot, id, text string) *envelope.Envelope {
		return envelope.New(robot, envelope.Message{Text: &envelope.Text{Content: text}}, envelope.WithID(id))
	}
	recs := []deadletter.Record{
		{Envelope: env("ops", "m-1", "disk full on db-3"), Robot: "ops", Reason: deadletter.ReasonPermanent, ErrCode: 310000,
			ErrMsg: "keywords not in content", DeadAt: day.Add(8 * time.Hour), Subject: r.topo.OutSubject("ops"), Sequence: 1},
		{Envelope: env("ops", "m-2", "late"), Robot: "ops", Reason: deadletter.ReasonExpired,
			DeadAt: day.Add(9 * time.Hour), Subject: r.topo.OutSubject("ops"), Sequence: 2},
		{Envelope: env("dev", "m-3", "build red"), Robot: "dev", Reason: deadletter.ReasonExhausted, ErrCode: -1, ErrMsg: "system busy",
			Attempts: 8, DeadAt: day.Add(10 * time.Hour), Subject: r.topo.OutSubject("dev"), Sequence: 3},
		{Raw: []byte(`{"robot":"dev",`), Robot: "dev", Reason: deadletter.ReasonDecode, Detail: "unexpected EOF",
			DeadAt: day.Add(11 * time.Hour), Subject: r.topo.OutSubject("dev"), Sequence: 4},
	}
	for _, rec := range recs {
		require.NoError(r.t, deadletter.Publish(ctx, r.js, r.topo, rec))
	}
}

func TestAPIDeadLettersFilters(t *testing.T) {
	r := newRig(t)
	r.addRobot("ops", 20)
	r.addRobot("dev", 20)
	r.seed()
	r.startConsole(nil)
	tests := []struct {
		name  string
		query string
		want  []uint64 // newest first
	}{
		{name: "all", query: "", want: []uint64{4, 3, 2, 1}},
		{name: "robot", query: "robot=ops", want: []uint64{2, 1}},
		{name: "reason", query: "reason=exhausted", want: []uint64{3}},
		{name: "errcode", query: "errcode=310000", want: []uint64{1}},
		{name: "since", query: "since=2026-12-01T09:00:00Z", want: []uint64{4, 3, 2}},
		{name: "until", query: "until=2026-12-01T09:00:00Z", want: []uint64{1}},
		{name: "range and robot", query: "robot=dev&since=2026-12-01T09:30:00Z&until=2026-12-01T10:30:00Z", want: []uint64{3}},
		{name: "text in content", query: "q=DB-3", want: []uint64{1}},
		{name: "text in raw payload", query: "q=" + url.QueryEscape(`"robot":"dev"`), want: []uint64{4}},
		{name: "paging", query: "limit=2&offset=1", want: []uint64{3, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ans deadAnswer
			code, body := r.call(http.MethodGet, "/api/v1/deadletters?"+tt.query, nil, nil, &ans)
			require.Equal(t, http.StatusOK, code, body)
			got := []uint64{}
			for _, e := range ans.Entries {
				got = append(got, e.Seq)
			}
			require.Equal(t, tt.want, got)
		})
	}
	code, body := r.call(http.MethodGet, "/api/v1/deadletters?reason=bored", nil, nil, nil)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, `unknown reason \"bored\"`)

	var detail struct {
		Seq     uint64 `json:"seq"`
		Preview struct {
			Platform, Text string
		} `json:"preview"`
	}
	code, body = r.call(http.MethodGet, "/api/v1/deadletters/1", nil, nil, &detail)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "dingtalk", detail.Preview.Platform)
	require.Equal(t, "disk full on db-3", detail.Preview.Text)
	code, _ = r.call(http.MethodGet, "/api/v1/deadletters/99", nil, nil, nil)
	require.Equal(t, http.StatusNotFound, code)
}

// TestAPIReplayDryRunThenReplayOnce: a message the platform refused is
// dead-lettered by the real worker; a dry run says what a replay would do
// and changes nothing; the replay delivers it; replaying again (a second
// click) posts nothing more.
func TestAPIReplayDryRunThenReplayOnce(t *testing.T) {
	r := newRig(t)
	r.addRobot("ops", 20)
	r.sim.InjectFault("ops", robotsimFault310000())
	r.startWorker()
	r.startConsole(nil)
	ctx := context.Background()
	env := envelope.New("ops", envelope.Message{Text: &envelope.Text{Content: "disk full [alert]"}})
	_, err := r.pub.Publish(ctx, env)
	require.NoError(t, err)
	var dead deadAnswer
	testenv.Eventually(t, 20*time.Second, func() bool {
		r.call(http.MethodGet, "/api/v1/deadletters?robot=ops", nil, nil, &dead)
		return dead.Total == 1
	}, "the worker dead-letters the refused message")
	require.Equal(t, 310000, dead.Entries[0].Record.ErrCode)
	seq := dead.Entries[0].Seq

	var ans actionAnswer
	ans = actionAnswer{}
	code, body := r.call(http.MethodPost, "/api/v1/deadletters:replay", map[string]any{"robot": "ops", "dry_run": true}, nil, &ans)
	require.Equal(t, http.StatusOK, code, body)
	require.True(t, ans.DryRun)
	require.Equal(t, 1, ans.Matched)
	require.Equal(t, map[string]int{console.StatusWouldReplay: 1}, ans.Counts)
	require.Equal(t, env.ID, ans.Items[0].ID)
	time.Sleep(300 * time.Millisecond) // a worker would have delivered a replay by now
	require.Empty(t, r.sim.Received("ops"), "a dry run posts nothing")

	ans = actionAnswer{}
	code, body = r.call(http.MethodPost, "/api/v1/deadletters:replay", map[string]any{"seqs": []uint64{seq}}, nil, &ans)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, map[string]int{console.StatusReplayed: 1}, ans.Counts)
	testenv.Eventually(t, 20*time.Second, func() bool { return len(r.sim.Received("ops")) == 1 }, "the replay is delivered")

	ans = actionAnswer{}
	code, body = r.call(http.MethodPost, "/api/v1/deadletters:replay", map[string]any{"seqs": []uint64{seq}}, nil, &ans)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, map[string]int{console.StatusAlreadyReplayed: 1}, ans.Counts, "a second click is refused by the replay dedup")
	time.Sleep(500 * time.Millisecond)
	require.Len(t, r.sim.Received("ops"), 1, "posted once")
}

// TestAPIBulkReplayIdempotent replays everything matching a filter twice:
// the second run replays nothing, and each message is delivered once.
func TestAPIBulkReplayIdempotent(t *testing.T) {
	r := newRig(t)
	r.addRobot("bulk", 60)
	r.startWorker()
	r.startConsole(nil)
	ctx := context.Background()
	const n = 12
	for i := range n {
		env := envelope.New("bulk", envelope.Message{Text: &envelope.Text{Content: fmt.Sprintf("m%d", i)}})
		rec := deadletter.Record{Envelope: env, Robot: "bulk", Reason: deadletter.ReasonExhausted, ErrCode: -1, DeadAt: time.Now(),
			Subject: r.topo.OutSubject("bulk"), Sequence: uint64(i + 1)}
		if i%4 == 0 {
			rec.Reason = deadletter.ReasonPermanent
		}
		require.NoError(t, deadletter.Publish(ctx, r.js, r.topo, rec))
	}
	filter := map[string]any{"robot": "bulk", "reason": "exhausted", "errcode": -1}
	var ans actionAnswer
	filter["dry_run"] = true
	ans = actionAnswer{}
	code, body := r.call(http.MethodPost, "/api/v1/deadletters:replay", filter, nil, &ans)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, 9, ans.Counts[console.StatusWouldReplay])
	delete(filter, "dry_run")
	ans = actionAnswer{}
	code, body = r.call(http.MethodPost, "/api/v1/deadletters:replay", filter, nil, &ans)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, map[string]int{console.StatusReplayed: 9}, ans.Counts)
	ans = actionAnswer{}
	code, body = r.call(http.MethodPost, "/api/v1/deadletters:replay", filter, nil, &ans)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, map[string]int{console.StatusAlreadyReplayed: 9}, ans.Counts)
	testenv.Eventually(t, 20*time.Second, func() bool { return len(r.sim.Received("bulk")) == 9 }, "nine delivered")
	time.Sleep(500 * time.Millisecond)
	require.Len(t, r.sim.Received("bulk"), 9, "each once")

	// Delete: a dry run first, then for real; the same again finds nothing.
	del := map[string]any{"robot": "bulk", "reason": "permanent", "dry_run": true}
	ans = actionAnswer{}
	code, body = r.call(http.MethodPost, "/api/v1/deadletters:delete", del, nil, &ans)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, map[string]int{console.StatusWouldDelete: 3}, ans.Counts)
	delete(del, "dry_run")
	ans = actionAnswer{}
	code, body = r.call(http.MethodPost, "/api/v1/deadletters:delete", del, nil, &ans)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, map[string]int{console.StatusDeleted: 3}, ans.Counts)
	ans = actionAnswer{}
	code, _ = r.call(http.MethodPost, "/api/v1/deadletters:delete", del, nil, &ans)
	require.Equal(t, http.StatusOK, code)
	require.Zero(t, ans.Matched)
}

func TestAPIReplayBadBodies(t *testing.T) {
	r := newRig(t)
	r.startConsole(nil)
	tests := []struct {
		name string
		body any
		want string
	}{
		{name: "nothing selected", body: map[string]any{}, want: `give seqs, a filter, or \"all\": true`},
		{name: "seqs and filter", body: map[string]any{"seqs": []int{1}, "robot": "ops"}, want: "not both"},
		{name: "unknown field", body: map[string]any{"robots": "ops"}, want: "unknown field"},
		{name: "bad reason", body: map[string]any{"reason": "bored"}, want: "unknown reason"},
		{name: "seq zero", body: map[string]any{"seqs": []int{0}}, want: "not a sequence number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := r.call(http.MethodPost, "/api/v1/deadletters:replay", tt.body, nil, nil)
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Contains(t, body, tt.want)
		})
	}
}

// TestAPIRobotsPaging20000 pages, filters and sorts a fleet of 20,000
// robots (every one inspected in the real Redis) from the snapshot, each
// request answered in well under a second.
func TestAPIRobotsPaging20000(t *testing.T) {
	r := newRig(t)
	const n = 20_000
	var robots []console.Robot
	for i := range n {
		robots = append(robots, console.Robot{Name: fmt.Sprintf("robot-%05d", i), Platform: "dingtalk",
			Limit: limiter.Limit{Max: 20, Window: time.Minute, Margin: time.Second}})
	}
	// One robot with a problem: cooling off in the limiter.
	require.NoError(t, r.lim.CoolOff(context.Background(), "robot-12345", time.Minute))
	r.startConsole(func(c *console.Config) { c.Robots, c.Refresh = robots, time.Minute })

	type page struct {
		Total, Page, PerPage, Pages int
		Robots                      []console.Row `json:"robots"`
	}
	get := func(q string) page {
		t.Helper()
		var p page
		code, body := r.call(http.MethodGet, "/api/v1/robots?"+q, nil, nil, &p)
		require.Equal(t, http.StatusOK, code, body)
		return p
	}
	first := get("") // waits for the first snapshot
	require.Equal(t, n, first.Total)
	require.Equal(t, 50, len(first.Robots))
	require.Equal(t, "robot-12345", first.Robots[0].Name, "problems first")
	require.Contains(t, strings.Join(first.Robots[0].Diagnoses, "\n"), "cooling off for")
	require.Positive(t, first.Robots[0].CoolOffLeft)

	tests := []struct {
		name      string
		query     string
		total     int
		firstName string
		rows      int
	}{
		{name: "last page", query: "sort=name&page=400", total: n, firstName: "robot-19950", rows: 50},
		{name: "past the end", query: "sort=name&page=401", total: n, rows: 0},
		{name: "big pages", query: "sort=name&per_page=500&page=2", total: n, firstName: "robot-00500", rows: 500},
		{name: "descending", query: "sort=name&desc=1", total: n, firstName: "robot-19999", rows: 50},
		{name: "filter", query: "q=robot-1999", total: 10, firstName: "robot-19990", rows: 10},
		{name: "problems only", query: "problems=1", total: 1, firstName: "robot-12345", rows: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			p := get(tt.query)
			require.Less(t, time.Since(start), time.Second, "served from the snapshot")
			require.Equal(t, tt.total, p.Total)
			require.Len(t, p.Robots, tt.rows)
			if tt.rows > 0 {
				require.Equal(t, tt.firstName, p.Robots[0].Name)
			}
		})
	}
	code, _ := r.call(http.MethodGet, "/api/v1/robots?sort=weight", nil, nil, nil)
	require.Equal(t, http.StatusBadRequest, code)
}

// robotsimFault310000 makes the simulator refuse the next message for good
// (DingTalk's keyword check), once.
func robotsimFault310000() robotsim.Fault {
	return robotsim.Fault{Body: `{"errcode":310000,"errmsg":"keywords not in content"}`}
}
