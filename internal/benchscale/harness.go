package benchscale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/botrelay/botrelay/pkg/robotsim"
)

// Options configure a run; [Run] fills the zero values with the sizes.
type Options struct {
	// Scenarios to run: "idle", "fanout", "saturation", "throughput".
	Scenarios []string
	// Dir holds the binaries, the stores, the configuration files and the
	// processes' logs.
	Dir string
	// ModuleDir is the botrelay module's root (where go build runs).
	ModuleDir string
	// RedisAddr is the real Redis; each scenario uses its own prefix.
	RedisAddr string
	// Workers is the number of worker processes (idle, fan-out, saturation).
	Workers int
	// Lanes is the workers' lanes setting ("consumer" or "direct"; empty:
	// the configuration's default).
	Lanes string

	IdleRobots   int
	IdleWindow   time.Duration
	ReadyTimeout time.Duration
	// SettleTimeout bounds the wait for the outbound stream's consumer
	// count to settle after the workers are ready.
	SettleTimeout   time.Duration
	FanoutRobots    int
	FanoutWait      time.Duration
	SatRobots       int
	SatPerRobot     int
	SatWindow       time.Duration
	TPRobots        int
	TPMessages      int
	TPBareMessages  int
	TPConcurrency   int
	DeliveryTimeout time.Duration

	// Log receives progress lines.
	Log io.Writer
}

func (o *Options) defaults() {
	set := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	setD := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	set(&o.Workers, 3)
	set(&o.IdleRobots, 20000)
	setD(&o.IdleWindow, time.Minute)
	setD(&o.ReadyTimeout, 60*time.Second)
	setD(&o.SettleTimeout, 3*time.Minute)
	set(&o.FanoutRobots, 10000)
	setD(&o.FanoutWait, 60*time.Second)
	set(&o.SatRobots, 2000)
	set(&o.SatPerRobot, 120)
	setD(&o.SatWindow, 2*time.Minute)
	set(&o.TPRobots, 500)
	set(&o.TPMessages, 20000)
	set(&o.TPBareMessages, 20000)
	set(&o.TPConcurrency, 32)
	setD(&o.DeliveryTimeout, 2*time.Minute)
	if o.RedisAddr == "" {
		o.RedisAddr = "127.0.0.1:6379"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// bins are the binaries built for the run.
type bins struct{ nats, worker, sim string }

// build builds nats-server (the version in go.mod), the worker and the
// simulator into dir.
func build(ctx context.Context, moduleDir, dir string, log io.Writer) (bins, error) {
	b := bins{nats: filepath.Join(dir, "nats-server"), worker: filepath.Join(dir, "worker"), sim: filepath.Join(dir, "robotsim")}
	for _, t := range []struct{ out, pkg string }{
		{b.nats, "github.com/nats-io/nats-server/v2"}, {b.worker, "./cmd/worker"}, {b.sim, "./cmd/robotsim"},
	} {
		fmt.Fprintf(log, "go build -o %s %s\n", t.out, t.pkg)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", t.out, t.pkg)
		cmd.Dir = moduleDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return bins{}, fmt.Errorf("benchscale: go build %s: %w\n%s", t.pkg, err, out)
		}
	}
	return b, nil
}

// proc is a process the benchmark started.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// start starts bin with args, its output to dir/<name>.log.
func start(dir, name, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("benchscale: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("benchscale: start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, and SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// logCount counts the lines of the process's log containing s.
func (p *proc) logCount(s string) int {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), s)
}

// freePort returns a local TCP port free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("benchscale: %w", err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

func httpOK(u string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stack is one scenario's processes: a nats-server, the simulator and the
// workers, all of its own (store, prefix, ports).
type stack struct {
	o       *Options
	b       bins
	dir     string
	prefix  string
	natsURL string
	monURL  string
	simURL  string
	cfgPath string
	nats    *proc
	sim     *proc
	workers []*proc
	ready   []string  // the workers' /readyz URLs
	started time.Time // when the workers were started
	nc      *nats.Conn
	js      jetstream.JetStream
}

// newStack starts a nats-server and prepares a prefix and the simulator's
// address; the fleet's configuration is written by [stack.startSim].
func newStack(ctx context.Context, o *Options, b bins, scenario string) (*stack, error) {
	s := &stack{o: o, b: b, dir: filepath.Join(o.Dir, scenario), prefix: "bs" + scenario[:2] + strconv.FormatInt(time.Now().UnixNano()%1e8, 36)}
	if err := os.MkdirAll(filepath.Join(s.dir, "store"), 0o755); err != nil {
		return nil, fmt.Errorf("benchscale: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	mon, err := freePort()
	if err != nil {
		return nil, err
	}
	s.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", port)
	s.monURL = fmt.Sprintf("http://127.0.0.1:%d", mon)
	s.nats, err = start(s.dir, "nats-server", b.nats, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(mon),
		"-js", "-sd", filepath.Join(s.dir, "store"), "-n", s.prefix)
	if err != nil {
		return nil, err
	}
	if !waitFor(ctx, 20*time.Second, func() bool { return httpOK(s.monURL + "/healthz") }) {
		s.close()
		return nil, fmt.Errorf("benchscale: nats-server not healthy in 20s (log %s)", s.nats.log)
	}
	if s.nc, err = nats.Connect(s.natsURL); err != nil {
		s.close()
		return nil, fmt.Errorf("benchscale: connect: %w", err)
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		s.close()
		return nil, fmt.Errorf("benchscale: %w", err)
	}
	return s, nil
}

// simAddr picks the simulator's address, so that the configuration's
// webhooks can name it before it starts.
func (s *stack) simAddr() (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	s.simURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	return fmt.Sprintf("127.0.0.1:%d", port), nil
}

// startSim writes f's configuration and starts the simulator serving it.
func (s *stack) startSim(ctx context.Context, f Fleet) error {
	addr, err := s.simAddr()
	if err != nil {
		return err
	}
	f.Prefix, f.SimURL = s.prefix, s.simURL
	s.cfgPath = filepath.Join(s.dir, "worker.yaml")
	file, err := os.Create(s.cfgPath)
	if err != nil {
		return fmt.Errorf("benchscale: %w", err)
	}
	if err := f.WriteConfig(file); err != nil {
		_ = file.Close()
		return fmt.Errorf("benchscale: write config: %w", err)
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("benchscale: %w", err)
	}
	s.sim, err = start(s.dir, "robotsim", s.b.sim, "-addr", addr, "-config", s.cfgPath, "-count-only")
	if err != nil {
		return err
	}
	if !waitFor(ctx, 60*time.Second, func() bool { return httpOK(s.simURL + "/_sim/stats") }) {
		return fmt.Errorf("benchscale: simulator not up in 60s (log %s)", s.sim.log)
	}
	return nil
}

// startWorkers starts n workers on the configuration; it returns when
// they are started, not ready.
func (s *stack) startWorkers(n int) error {
	for i := range n {
		port, err := freePort()
		if err != nil {
			return err
		}
		name := fmt.Sprintf("worker%d", i)
		p, err := start(s.dir, name, s.b.worker, "--config", s.cfgPath, "--nats", s.natsURL, "--redis", s.o.RedisAddr,
			"--restart-guard=false", "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", port), "--log-level", "warn", "--name", name)
		if err != nil {
			return err
		}
		s.workers = append(s.workers, p)
		s.ready = append(s.ready, fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
	}
	return nil
}

// waitReady waits until every worker answers /readyz 200 and returns how
// long the last took from since; false when not within timeout.
func (s *stack) waitReady(ctx context.Context, since time.Time, timeout time.Duration) (time.Duration, bool) {
	ok := waitFor(ctx, timeout, func() bool {
		for i, u := range s.ready {
			if !s.workers[i].running() || !httpOK(u) {
				return false
			}
		}
		return true
	})
	return time.Since(since), ok
}

// totals reads the simulator's totals.
func (s *stack) totals(ctx context.Context) (robotsim.Totals, error) {
	var t robotsim.Totals
	err := getJSON(ctx, s.simURL+"/_sim/stats", &t)
	return t, err
}

// robots reads the simulator's per-robot counters.
func (s *stack) robots(ctx context.Context) ([]robotsim.RobotStatus, error) {
	var rs []robotsim.RobotStatus
	err := getJSON(ctx, s.simURL+"/_sim/robots", &rs)
	return rs, err
}

// logCount counts the worker log lines containing text.
func (s *stack) logCount(text string) int {
	n := 0
	for _, w := range s.workers {
		n += w.logCount(text)
	}
	return n
}

// close stops every process (workers first: they drain) and deletes the
// prefix's Redis keys.
func (s *stack) close() {
	for _, w := range s.workers {
		go w.stop(15 * time.Second)
	}
	for _, w := range s.workers {
		<-w.done
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.sim != nil {
		s.sim.stop(5 * time.Second)
	}
	if s.nats != nil {
		s.nats.stop(10 * time.Second)
	}
	_ = os.RemoveAll(filepath.Join(s.dir, "store"))
	if err := deleteKeys(context.Background(), s.o.RedisAddr, s.prefix+":*"); err != nil {
		fmt.Fprintf(s.o.Log, "redis cleanup of %s: %v\n", s.prefix, err)
	}
}

// deleteKeys deletes the keys matching pattern.
func deleteKeys(ctx context.Context, addr, pattern string) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer func() { _ = rdb.Close() }()
	var errs []error
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	var batch []string
	flush := func() {
		if len(batch) > 0 {
			errs = append(errs, rdb.Del(ctx, batch...).Err())
			batch = batch[:0]
		}
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			flush()
		}
	}
	flush()
	errs = append(errs, iter.Err())
	return errors.Join(errs...)
}
