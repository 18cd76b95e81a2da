package limiter

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Quiet holds every robot, known or not, until it ends; Inspect reports it;
// a shorter Quiet does not shorten it.
func TestMemoryQuiet(t *testing.T) {
	ctx := context.Background()
	c := newFakeClock()
	m := NewMemory(c.Now)
	lim := Limit{Max: 3, Window: time.Minute, Margin: 5 * time.Second}
	m.Quiet(10 * time.Minute)
	m.Quiet(time.Minute)

	d, err := m.Reserve(ctx, "r", lim)
	require.NoError(t, err)
	require.Equal(t, Decision{RetryAfter: 10 * time.Minute}, d)
	st, err := m.Inspect(ctx, "never-seen", lim)
	require.NoError(t, err)
	require.Equal(t, State{QuietLeft: 10 * time.Minute, NextSlot: 10 * time.Minute}, st)

	c.Advance(10*time.Minute - time.Millisecond)
	d, err = m.Reserve(ctx, "r", lim)
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Equal(t, time.Millisecond, d.RetryAfter)
	c.Advance(time.Millisecond)
	for i := range lim.Max {
		d, err = m.Reserve(ctx, "r", lim)
		require.NoError(t, err)
		require.True(t, d.Allowed, "grant %d after the quiet time", i+1)
	}
}

// A limiter restarted from the state saved at a clean shutdown keeps the
// full windows, the cool-offs and the quiet time left, so it grants no new
// burst; the file is removed as it is read, so that a crash later leaves
// nothing to trust.
func TestMemoryStateSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	c := newFakeClock()
	lim := Limit{Max: 3, Window: time.Minute, Margin: 5 * time.Second}
	path := filepath.Join(t.TempDir(), "limiter.json")

	before := NewMemory(c.Now)
	for range lim.Max {
		d, err := before.Reserve(ctx, "burst", lim)
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
	require.NoError(t, before.CoolOff(ctx, "banned", 10*time.Minute))
	c.Advance(10 * time.Second)
	require.NoError(t, before.SaveState(path))
	c.Advance(2 * time.Second) // the restart

	after := NewMemory(c.Now)
	require.NoError(t, after.RestoreState(path))
	_, err := os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "the state file is consumed")

	d, err := after.Reserve(ctx, "burst", lim)
	require.NoError(t, err)
	require.Equal(t, Decision{RetryAfter: lim.Window + lim.Margin - 12*time.Second}, d, "no fresh burst")
	d, err = after.Reserve(ctx, "banned", lim)
	require.NoError(t, err)
	require.Equal(t, Decision{RetryAfter: 10*time.Minute - 12*time.Second, CoolingOff: true}, d, "the cool-off survives")
	d, err = after.Reserve(ctx, "other", lim)
	require.NoError(t, err)
	require.True(t, d.Allowed, "a restored state needs no quiet time")

	c.Advance(lim.Window + lim.Margin)
	d, err = after.Reserve(ctx, "burst", lim)
	require.NoError(t, err)
	require.True(t, d.Allowed, "the restored window expires as the original")

	// A quiet time running at shutdown runs on after the restart: the
	// history it stands for is still unknown.
	q := NewMemory(c.Now)
	q.Quiet(time.Minute)
	require.NoError(t, q.SaveState(path))
	c.Advance(20 * time.Second)
	restored := NewMemory(c.Now)
	require.NoError(t, restored.RestoreState(path))
	d, err = restored.Reserve(ctx, "r", lim)
	require.NoError(t, err)
	require.Equal(t, Decision{RetryAfter: 40 * time.Second}, d)

	// No file: the caller must wait out the quiet time.
	require.ErrorIs(t, NewMemory(c.Now).RestoreState(path), os.ErrNotExist)
}

// A state file that cannot be trusted is refused, changes nothing, and is
// removed.
func TestMemoryStateInvalid(t *testing.T) {
	c := newFakeClock()
	now := strconv.FormatInt(c.Now().UnixMicro(), 10)
	future := strconv.FormatInt(c.Now().Add(2*time.Minute).UnixMicro(), 10)
	idle := strconv.FormatInt(c.Now().Add(time.Minute).UnixMicro(), 10)
	tests := []struct {
		name, content, want string
	}{
		{name: "not JSON", content: "{", want: "unexpected EOF"},
		{name: "other version", content: `{"v":2,"saved_at_us":` + now + `,"robots":{}}`, want: "version 2, want 1"},
		{name: "unknown field", content: `{"v":1,"saved_at_us":` + now + `,"robots":{},"extra":1}`, want: "unknown field"},
		{name: "saved in the future", content: `{"v":1,"saved_at_us":` + future + `,"robots":{}}`, want: "the clock went back"},
		{name: "bad robot name", content: `{"v":1,"saved_at_us":` + now + `,"robots":{"{x}":{"idle_at_us":` + idle + `}}}`,
			want: "invalid robot name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "limiter.json")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o600))
			m := NewMemory(c.Now)
			err := m.RestoreState(path)
			require.ErrorIs(t, err, ErrInvalidState)
			require.ErrorContains(t, err, tt.want)
			require.Zero(t, m.robotCount())
			_, err = os.Stat(path)
			require.ErrorIs(t, err, os.ErrNotExist, "an untrusted file is removed")
		})
	}
}

// WriteState leaves out robots with nothing left to remember.
func TestMemoryWriteStateOmitsIdleRobots(t *testing.T) {
	ctx := context.Background()
	c := newFakeClock()
	m := NewMemory(c.Now)
	_, err := m.Reserve(ctx, "idle", Limit{Max: 1, Window: time.Second})
	require.NoError(t, err)
	_, err = m.Reserve(ctx, "busy", Limit{Max: 1, Window: time.Hour})
	require.NoError(t, err)
	c.Advance(time.Minute)
	var b bytes.Buffer
	require.NoError(t, m.WriteState(&b))
	require.Contains(t, b.String(), `"busy"`)
	require.NotContains(t, b.String(), `"idle"`)
}
