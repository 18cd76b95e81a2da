package benchscale

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrProc is matched by the errors of [ReadCPU] and [ReadRSS].
var ErrProc = errors.New("benchscale: /proc")

// ClockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's times
// (100 on every Linux architecture botrelay runs on).
const ClockTicks = 100

// ParseStatCPU returns utime+stime of a /proc/<pid>/stat line, as a
// duration.
func ParseStatCPU(stat string) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("%w: stat: no command name", ErrProc)
	}
	f := strings.Fields(stat[end+1:])
	// After the name: state (3), ... utime (14), stime (15).
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: stat: %d fields after the name", ErrProc, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: stat: %w", ErrProc, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / ClockTicks, nil
}

// ReadCPU returns the CPU time process pid used so far.
func ReadCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrProc, err)
	}
	return ParseStatCPU(string(b))
}

// ParseStatusRSS returns the VmRSS of a /proc/<pid>/status, in bytes.
func ParseStatusRSS(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("%w: status: VmRSS %q", ErrProc, rest)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%w: status: %w", ErrProc, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("%w: status: no VmRSS", ErrProc)
}

// ReadRSS returns the resident memory of process pid, in bytes.
func ReadRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrProc, err)
	}
	return ParseStatusRSS(string(b))
}

// CPUShare is the share of one core used: cpu over wall.
func CPUShare(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return cpu.Seconds() / wall.Seconds()
}

// Varz is the part of nats-server's /varz the benchmark reads.
type Varz struct {
	InMsgs  int64 `json:"in_msgs"`
	OutMsgs int64 `json:"out_msgs"`
	// Connections is the number of client connections.
	Connections int `json:"connections"`
}

// Msgs is in_msgs + out_msgs.
func (v Varz) Msgs() int64 { return v.InMsgs + v.OutMsgs }

// ParseVarz decodes a /varz answer.
func ParseVarz(b []byte) (Varz, error) {
	var v Varz
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&v); err != nil {
		return Varz{}, fmt.Errorf("benchscale: varz: %w", err)
	}
	return v, nil
}

// getJSON GETs u and decodes its JSON into v.
func getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("benchscale: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("benchscale: GET %s: %w", u, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("benchscale: GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("benchscale: GET %s: %w", u, err)
	}
	return nil
}

// readVarz reads the server's /varz at monitoring URL mon.
func readVarz(ctx context.Context, mon string) (Varz, error) {
	var v Varz
	err := getJSON(ctx, mon+"/varz", &v)
	return v, err
}

// jsonDecode decodes resp's JSON body into v.
func jsonDecode(resp *http.Response, v any) error {
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("benchscale: %s: %w", resp.Request.URL.Path, err)
	}
	return nil
}
