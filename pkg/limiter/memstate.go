package limiter

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// ErrInvalidState reports a [Memory] state file that cannot be trusted:
// unreadable, of another version, or saved in the future.
var ErrInvalidState = errors.New("limiter: invalid state file")

// stateVersion is the version of the state file's format.
const stateVersion = 1

// maxClockSkew is how far in the future a state may have been saved before
// it is refused: the clock went back, so its times cannot be compared.
const maxClockSkew = time.Minute

// memState is the JSON form of a [Memory]'s state. Times are µs since the
// Unix epoch of the process's clock.
type memState struct {
	V       int                      `json:"v"`
	SavedAt int64                    `json:"saved_at_us"`
	Quiet   int64                    `json:"quiet_until_us,omitempty"`
	Robots  map[string]memRobotState `json:"robots"`
}

type memRobotState struct {
	Grants    []int64 `json:"grants_us,omitempty"`
	CoolUntil int64   `json:"cool_until_us,omitempty"`
	IdleAt    int64   `json:"idle_at_us"`
}

// WriteState writes m's state as JSON to w: every robot's grants still in
// its window, cool-offs still running, and the quiet time left (see
// [Memory.Quiet]). Robots with nothing left are omitted.
func (m *Memory) WriteState(w io.Writer) error {
	m.mu.Lock()
	now := m.clock()
	st := memState{V: stateVersion, SavedAt: now.UnixMicro(), Robots: make(map[string]memRobotState, len(m.robots))}
	if now.Before(m.quietUntil) {
		st.Quiet = m.quietUntil.UnixMicro()
	}
	for name, r := range m.robots {
		if !now.Before(r.idleAt) {
			continue
		}
		rs := memRobotState{IdleAt: r.idleAt.UnixMicro()}
		for _, g := range r.log {
			rs.Grants = append(rs.Grants, g.UnixMicro())
		}
		if now.Before(r.coolUntil) {
			rs.CoolUntil = r.coolUntil.UnixMicro()
		}
		st.Robots[name] = rs
	}
	m.mu.Unlock()

	if err := json.NewEncoder(w).Encode(st); err != nil {
		return fmt.Errorf("limiter: write state: %w", err)
	}
	return nil
}

// ReadState adds the state written by [Memory.WriteState] to m: grants,
// cool-offs (never shortening one m has) and the quiet time. Robot names
// are checked as Reserve checks them. It returns an error wrapping
// [ErrInvalidState], and changes nothing, when the state is not valid JSON
// of this version or was saved more than a minute in m's future.
func (m *Memory) ReadState(r io.Reader) error {
	var st memState
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	if st.V != stateVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrInvalidState, st.V, stateVersion)
	}
	for name := range st.Robots {
		if err := checkRobot(name); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidState, err)
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock()
	if saved := time.UnixMicro(st.SavedAt); saved.After(now.Add(maxClockSkew)) {
		return fmt.Errorf("%w: saved at %s, after now (%s): the clock went back", ErrInvalidState,
			saved.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if q := time.UnixMicro(st.Quiet); st.Quiet != 0 && q.After(m.quietUntil) {
		m.quietUntil = q
	}
	for name, rs := range st.Robots {
		idle := time.UnixMicro(rs.IdleAt)
		if !now.Before(idle) {
			continue
		}
		r := m.robots[name]
		if r == nil {
			r = &memRobot{}
			m.robots[name] = r
		}
		for _, g := range rs.Grants {
			r.log = append(r.log, time.UnixMicro(g))
		}
		slices.SortFunc(r.log, time.Time.Compare)
		if c := time.UnixMicro(rs.CoolUntil); rs.CoolUntil != 0 && c.After(r.coolUntil) {
			r.coolUntil = c
		}
		if idle.After(r.idleAt) {
			r.idleAt = idle
		}
	}
	return nil
}

// SaveState writes m's state (see [Memory.WriteState]) to the file at path,
// atomically: a temporary file in the same directory, synced, then renamed
// over path. Call it on a clean shutdown, after the last decision.
func (m *Memory) SaveState(path string) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("limiter: save state: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := m.WriteState(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("limiter: save state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("limiter: save state: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("limiter: save state: %w", err)
	}
	return nil
}

// RestoreState reads the state file at path into m (see [Memory.ReadState])
// and removes the file, so that it is valid only until this process
// decides again: after a crash, which saves nothing, the next start finds
// no state and must wait out the quiet time instead of trusting an old
// one. The error wraps [os.ErrNotExist] when there is no file and
// [ErrInvalidState] when it cannot be trusted (it is removed too).
func (m *Memory) RestoreState(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("limiter: restore state: %w", err)
	}
	rerr := m.ReadState(f)
	_ = f.Close()
	if err := os.Remove(path); err != nil {
		// A file that stays would be trusted again after a crash.
		return fmt.Errorf("limiter: restore state: %w: cannot remove %s: %w", ErrInvalidState, path, err)
	}
	if rerr != nil {
		return fmt.Errorf("limiter: restore state from %s: %w", path, rerr)
	}
	return nil
}
