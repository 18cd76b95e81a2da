package config

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultPollInterval is how often a [Watcher] looks at its file.
const DefaultPollInterval = 2 * time.Second

// ErrInvalidOption is matched by the errors of [NewWatcher]'s options.
var ErrInvalidOption = errors.New("config: invalid option")

// Change is a new content of a watched file, or a failure to read it.
type Change struct {
	// Data is the file's content; nil when Err is set.
	Data []byte
	// Hash is the SHA-256 of Data, hex.
	Hash string
	// Forced is set for a change asked for with [Watcher.Trigger] (a
	// SIGHUP): reported even when the content is the one last reported.
	Forced bool
	// Err is why the file could not be read.
	Err error
}

// Watcher reports when the content of a configuration file changes. It
// polls: every interval it resolves the path's symbolic links and stats the
// file they lead to, and reads and hashes it when the target, its inode,
// size or modification time changed. That covers an editor writing a new
// file and renaming it over the old one, a file rewritten in place, and a
// Kubernetes ConfigMap volume, where the mounted path is a link
// (config.yaml → ..data/config.yaml) through a directory link (..data →
// ..2026_12_02_10_00_00.123/) that the kubelet swaps atomically: the
// resolved path changes. A change is reported only when the content's hash
// differs from the last one reported (a touch, or a swap to identical
// content, is not a change); [Watcher.Trigger] reports the content at once
// whatever its hash. A file that cannot be read is reported once, until it
// can be read again.
type Watcher struct {
	path     string
	interval time.Duration
	trigger  chan struct{}

	mu       sync.Mutex
	hash     string   // of the content last reported (or the baseline)
	stat     fileStat // of the file last read
	errShown string   // the read error last reported
}

// fileStat is what a poll compares before reading the file.
type fileStat struct {
	target string // the path with every link resolved
	info   os.FileInfo
}

// same reports whether a and b are the same file, unmodified.
func (a fileStat) same(b fileStat) bool {
	return a.info != nil && b.info != nil && a.target == b.target && os.SameFile(a.info, b.info) &&
		a.info.Size() == b.info.Size() && a.info.ModTime().Equal(b.info.ModTime())
}

// WatchOption configures a [Watcher].
type WatchOption func(*Watcher) error

// WithPollInterval sets how often the file is looked at; default
// [DefaultPollInterval]; 0: never, only on [Watcher.Trigger].
func WithPollInterval(d time.Duration) WatchOption {
	return func(w *Watcher) error {
		if d < 0 {
			return fmt.Errorf("%w: poll interval must not be negative, got %s", ErrInvalidOption, d)
		}
		w.interval = d
		return nil
	}
}

// WithBaseline makes data (the content the process loaded at start) the
// content last seen: a file still holding it is no change, and a change
// made between that load and the watcher's creation is not missed.
// Without it the file's content when the watcher is created is the
// baseline.
func WithBaseline(data []byte) WatchOption {
	return func(w *Watcher) error {
		w.hash = hashOf(data)
		return nil
	}
}

// NewWatcher returns a watcher of the file at path; call [Watcher.Run]. It
// takes [WithPollInterval] and [WithBaseline].
func NewWatcher(path string, opts ...WatchOption) (*Watcher, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no path to watch", ErrInvalidOption)
	}
	w := &Watcher{path: path, interval: DefaultPollInterval, trigger: make(chan struct{}, 1)}
	for _, o := range opts {
		if err := o(w); err != nil {
			return nil, err
		}
	}
	if w.hash != "" {
		return w, nil // the first poll reads the file and compares it with the baseline
	}
	if st, data, err := w.read(); err == nil {
		w.stat, w.hash = st, hashOf(data)
	}
	return w, nil
}

// Trigger asks for the file to be read and reported now, changed or not
// (what a SIGHUP does). It never blocks; triggers made while one is
// pending are one.
func (w *Watcher) Trigger() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// Run polls until ctx is done, calling changed (from Run's goroutine, one
// call at a time) with each change and each triggered read.
func (w *Watcher) Run(ctx context.Context, changed func(Change)) {
	var tick <-chan time.Time // nil: no polling
	if w.interval > 0 {
		t := time.NewTicker(w.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		force := false
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-w.trigger:
			force = true
		}
		if c, ok := w.Check(force); ok {
			changed(c)
		}
	}
}

// Check looks at the file once, as a poll (force false) or a trigger
// (force true) does, and returns the change to report, if any.
func (w *Watcher) Check(force bool) (Change, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, err := w.statFile()
	if err == nil && !force && st.same(w.stat) && w.errShown == "" {
		return Change{}, false // nothing moved: the content was not read
	}
	var data []byte
	if err == nil {
		st, data, err = w.read()
	}
	if err != nil {
		if !force && err.Error() == w.errShown {
			return Change{}, false
		}
		w.errShown = err.Error()
		w.stat = fileStat{}
		return Change{Err: err, Forced: force}, true
	}
	w.errShown = ""
	w.stat = st
	h := hashOf(data)
	if h == w.hash && !force {
		return Change{}, false
	}
	w.hash = h
	return Change{Data: data, Hash: h, Forced: force}, true
}

// read reads the file with the stat of what was read: the target is
// resolved first and read by its resolved name, so a link swapped meanwhile
// gives a stat that differs from the next poll's and is read again then.
// A target removed between the two (the kubelet deleting the old
// directory right after a swap) is resolved again once.
func (w *Watcher) read() (fileStat, []byte, error) {
	for try := 0; ; try++ {
		st, err := w.statFile()
		if err != nil {
			return fileStat{}, nil, err
		}
		data, err := os.ReadFile(st.target)
		switch {
		case err == nil:
			return st, data, nil
		case try == 0 && errors.Is(err, os.ErrNotExist):
			continue
		default:
			return fileStat{}, nil, fmt.Errorf("config: %w", err)
		}
	}
}

// statFile resolves the path's links and stats the file they lead to.
func (w *Watcher) statFile() (fileStat, error) {
	target, err := filepath.EvalSymlinks(w.path)
	if err != nil {
		return fileStat{}, fmt.Errorf("config: %w", err)
	}
	fi, err := os.Stat(target)
	if err != nil {
		return fileStat{}, fmt.Errorf("config: %w", err)
	}
	if fi.IsDir() {
		return fileStat{}, fmt.Errorf("config: %s is a directory", w.path)
	}
	return fileStat{target: target, info: fi}, nil
}

func hashOf(data []byte) string { return fmt.Sprintf("%x", sha256.Sum256(data)) }
