package config_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/config"
)

// configMap lays out dir the way the kubelet mounts a ConfigMap:
// config.yaml → ..data/config.yaml, ..data → ..<timestamp>/, and swaps
// ..data atomically (a new link renamed over it) to publish a new version.
type configMap struct {
	t       *testing.T
	dir     string
	version int
}

func newConfigMap(t *testing.T, content string) *configMap {
	m := &configMap{t: t, dir: t.TempDir()}
	m.publish(content)
	require.NoError(t, os.Symlink(filepath.Join("..data", "config.yaml"), m.path()))
	return m
}

func (m *configMap) path() string { return filepath.Join(m.dir, "config.yaml") }

// publish writes content into a new timestamped directory, points ..data
// at it by renaming a new link over the old one, and removes the old
// directory, as the kubelet's atomic writer does.
func (m *configMap) publish(content string) {
	m.version++
	old, _ := os.Readlink(filepath.Join(m.dir, "..data"))
	ts := "..2026_12_02_10_00_0" + string(rune('0'+m.version)) + ".12345"
	require.NoError(m.t, os.Mkdir(filepath.Join(m.dir, ts), 0o755))
	require.NoError(m.t, os.WriteFile(filepath.Join(m.dir, ts, "config.yaml"), []byte(content), 0o644))
	tmp := filepath.Join(m.dir, "..data_tmp")
	require.NoError(m.t, os.Symlink(ts, tmp))
	require.NoError(m.t, os.Rename(tmp, filepath.Join(m.dir, "..data")))
	if old != "" {
		require.NoError(m.t, os.RemoveAll(filepath.Join(m.dir, old)))
	}
}

// replace writes content to a new file and renames it over path, as
// editors and configuration tools do.
func replace(t *testing.T, path, content string) {
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

func TestWatcherCheck(t *testing.T) {
	type step struct {
		do      func(t *testing.T, path string)
		force   bool
		want    string // the content reported; "" none
		wantErr bool
	}
	plain := func(t *testing.T, content string) string {
		p := filepath.Join(t.TempDir(), "robots.yaml")
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	var cm *configMap
	tests := []struct {
		name  string
		setup func(t *testing.T) string
		steps []step
	}{
		{name: "nothing changed", setup: func(t *testing.T) string { return plain(t, "v1") },
			steps: []step{{}, {}}},
		{name: "rewritten in place", setup: func(t *testing.T) string { return plain(t, "v1") },
			steps: []step{
				{do: func(t *testing.T, p string) { require.NoError(t, os.WriteFile(p, []byte("v2 longer"), 0o644)) }, want: "v2 longer"},
				{}, // reported once
			}},
		{name: "renamed over", setup: func(t *testing.T) string { return plain(t, "v1") },
			steps: []step{{do: func(t *testing.T, p string) { replace(t, p, "v2") }, want: "v2"}, {}}},
		{name: "touched or replaced with the same content", setup: func(t *testing.T) string { return plain(t, "v1") },
			steps: []step{
				{do: func(t *testing.T, p string) {
					require.NoError(t, os.Chtimes(p, time.Now().Add(time.Hour), time.Now().Add(time.Hour)))
				}},
				{do: func(t *testing.T, p string) { replace(t, p, "v1") }},
			}},
		{name: "trigger reports unchanged content", setup: func(t *testing.T) string { return plain(t, "v1") },
			steps: []step{{force: true, want: "v1"}, {}, {force: true, want: "v1"}}},
		{name: "changed back is a change", setup: func(t *testing.T) string { return plain(t, "v1") },
			steps: []step{
				{do: func(t *testing.T, p string) { replace(t, p, "v2") }, want: "v2"},
				{do: func(t *testing.T, p string) { replace(t, p, "v1") }, want: "v1"},
			}},
		{name: "removed: reported once, then the new file", setup: func(t *testing.T) string { return plain(t, "v1") },
			steps: []step{
				{do: func(t *testing.T, p string) { require.NoError(t, os.Remove(p)) }, wantErr: true},
				{},
				{force: true, wantErr: true}, // a SIGHUP is always answered
				{do: func(t *testing.T, p string) { require.NoError(t, os.WriteFile(p, []byte("v3"), 0o644)) }, want: "v3"},
			}},
		{name: "kubernetes configmap symlink swap", setup: func(t *testing.T) string {
			cm = newConfigMap(t, "v1")
			return cm.path()
		}, steps: []step{
			{},
			{do: func(*testing.T, string) { cm.publish("v2") }, want: "v2"},
			{},
			{do: func(*testing.T, string) { cm.publish("v2") }}, // a new version, same content
			{do: func(*testing.T, string) { cm.publish("v3: same size") }, want: "v3: same size"},
			{do: func(*testing.T, string) { cm.publish("v4: same size") }, want: "v4: same size"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t)
			w, err := config.NewWatcher(path)
			require.NoError(t, err)
			for i, s := range tt.steps {
				if s.do != nil {
					s.do(t, path)
				}
				c, ok := w.Check(s.force)
				switch {
				case s.wantErr:
					require.True(t, ok, "step %d: want an error reported", i)
					require.Error(t, c.Err, "step %d", i)
					require.ErrorIs(t, c.Err, os.ErrNotExist, "step %d", i)
				case s.want == "":
					require.False(t, ok, "step %d: want no change, got %+v", i, c)
				default:
					require.True(t, ok, "step %d: want %q reported", i, s.want)
					require.NoError(t, c.Err, "step %d", i)
					require.Equal(t, s.want, string(c.Data), "step %d", i)
					require.Equal(t, s.force, c.Forced, "step %d", i)
					require.Len(t, c.Hash, 64, "step %d", i)
				}
			}
		})
	}
}

// TestWatcherBaseline: a change made between the start's load and the
// watcher's creation is reported.
func TestWatcherBaseline(t *testing.T) {
	p := filepath.Join(t.TempDir(), "robots.yaml")
	require.NoError(t, os.WriteFile(p, []byte("v2"), 0o644))
	w, err := config.NewWatcher(p, config.WithBaseline([]byte("v1")))
	require.NoError(t, err)
	c, ok := w.Check(false)
	require.True(t, ok)
	require.Equal(t, "v2", string(c.Data))
	_, ok = w.Check(false)
	require.False(t, ok)
}

func TestWatcherOptions(t *testing.T) {
	_, err := config.NewWatcher("")
	require.ErrorIs(t, err, config.ErrInvalidOption)
	_, err = config.NewWatcher("x.yaml", config.WithPollInterval(-time.Second))
	require.ErrorIs(t, err, config.ErrInvalidOption)
	_, err = config.NewWatcher(filepath.Join(t.TempDir(), "later.yaml")) // may not exist yet
	require.NoError(t, err)
}

// TestWatcherRun: Run reports a symlink swap by polling, and a Trigger at
// once, one report each, until its context ends.
func TestWatcherRun(t *testing.T) {
	cm := newConfigMap(t, "v1")
	w, err := config.NewWatcher(cm.path(), config.WithPollInterval(20*time.Millisecond))
	require.NoError(t, err)
	var mu sync.Mutex
	var got []config.Change
	seen := func() []config.Change { mu.Lock(); defer mu.Unlock(); return append([]config.Change(nil), got...) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, func(c config.Change) { mu.Lock(); got = append(got, c); mu.Unlock() })
	}()
	cm.publish("v2")
	require.Eventually(t, func() bool { return len(seen()) == 1 }, 5*time.Second, 5*time.Millisecond)
	w.Trigger()
	require.Eventually(t, func() bool { return len(seen()) == 2 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // five polls: nothing more
	cancel()
	<-done
	c := seen()
	require.Len(t, c, 2)
	require.Equal(t, "v2", string(c[0].Data))
	require.False(t, c[0].Forced)
	require.Equal(t, "v2", string(c[1].Data))
	require.True(t, c[1].Forced)

	// Without polling only a Trigger reports.
	w, err = config.NewWatcher(cm.path(), config.WithPollInterval(0))
	require.NoError(t, err)
	cm.publish("v3")
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	reports := make(chan config.Change, 4)
	go w.Run(ctx, func(c config.Change) { reports <- c })
	select {
	case c := <-reports:
		t.Fatalf("reported without polling or trigger: %+v", c)
	case <-time.After(100 * time.Millisecond):
	}
	w.Trigger()
	select {
	case c := <-reports:
		require.Equal(t, "v3", string(c.Data))
		require.True(t, c.Forced)
	case <-time.After(5 * time.Second):
		t.Fatal("no report after Trigger")
	}
}
