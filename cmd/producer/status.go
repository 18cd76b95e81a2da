package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/fleet"
	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/stream"
)

// robotStatus is one row of "producer status": what JetStream and, with
// --redis, the limiter know about a robot, and what looks wrong.
type robotStatus struct {
	Robot string `json:"robot"`
	stream.RobotQueue
	// Limiter is nil without --redis and --config, and for a robot not in
	// --config (the limiter key, the webhook's identity, is unknown).
	Limiter *limiterStatus `json:"limiter,omitempty"`
	// Diagnoses are one-line explanations of what keeps the robot from
	// delivering, most important first; empty when nothing looks wrong.
	Diagnoses []string `json:"diagnoses"`
	// Digest is set, with --redis and --config, for a digest robot.
	Digest *digestStatus `json:"digest,omitempty"`
	// Members are a pool's members (statuspools.go); empty for a robot.
	Members []poolMember `json:"members,omitempty"`

	// presence is the workers' registry (nil without --redis); oldestAge
	// the age of the oldest queued message, read when a backlog has no
	// consumer or no pull (0 when not read).
	presence  *ledger.Members
	oldestAge time.Duration
	scan      time.Duration // --scan-interval
}

// limiterStatus is the limiter's view of a robot. Durations are in
// milliseconds, rounded up.
type limiterStatus struct {
	CoolOffLeftMS int64 `json:"cool_off_left_ms"`
	QuietLeftMS   int64 `json:"quiet_left_ms"`
	// Max, InWindow and NextSlotMS are set when the limiter was read.
	Max        int    `json:"max,omitempty"`
	InWindow   *int   `json:"in_window,omitempty"`
	NextSlotMS *int64 `json:"next_slot_ms,omitempty"`
	// Error is why the limiter could not be read.
	Error string `json:"error,omitempty"`

	state limiter.State
	limit limiter.Limit
}

// statusOptions are the flags of "producer status".
type statusOptions struct {
	robot            string
	redisAddr        string
	redisPasswordEnv string
	redisDB          int
	restartGuard     bool
	configPath       string
	asJSON           bool
	scanInterval     time.Duration
}

func runStatus(ctx context.Context, g *globals, args []string, stdout, stderr io.Writer) error {
	o := statusOptions{redisAddr: cli.EnvOr(os.LookupEnv, cli.EnvRedisAddr, "")}
	fs := g.flagSet("status")
	fs.StringVar(&o.robot, "robot", "", "only this robot")
	fs.StringVar(&o.redisAddr, "redis", o.redisAddr, "Redis host:port of the workers' limiter (env "+cli.EnvRedisAddr+"); without it, no limiter columns")
	fs.StringVar(&o.redisPasswordEnv, "redis-password-env", "", "name of the environment variable holding the Redis password")
	fs.IntVar(&o.redisDB, "redis-db", 0, "Redis database number")
	fs.BoolVar(&o.restartGuard, "restart-guard", true, "the workers run with the restart guard (as by default)")
	fs.StringVar(&o.configPath, "config", "", "the workers' robots.yaml, for the robots' limits")
	fs.BoolVar(&o.asJSON, "json", false, "print one JSON object per robot and line")
	fs.DurationVar(&o.scanInterval, "scan-interval", fleet.DefaultScanInterval,
		"the workers' scan interval: they create a robot's consumer within it of work arriving, so only an older backlog without one is diagnosed")
	pos, done, err := parseSub(fs, args, stdout, statusUsage)
	if done || err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.Usagef("status: unexpected argument %q", pos[0])
	}
	if o.robot != "" && strings.ContainsAny(o.robot, ".*> \t{}") {
		return cli.Usagef("status: --robot %q is not a robot name", o.robot)
	}
	if o.scanInterval <= 0 {
		return cli.Usagef("status: --scan-interval must be positive, not %s", o.scanInterval)
	}
	if o.redisDB < 0 {
		return cli.Usagef("status: --redis-db must not be negative, not %d", o.redisDB)
	}
	if o.redisPasswordEnv != "" && o.redisAddr == "" {
		return cli.Usagef("status: --redis-password-env needs --redis (or %s)", cli.EnvRedisAddr)
	}
	topo, err := g.topology()
	if err != nil {
		return err
	}

	var cfg *config.Config
	if o.configPath != "" {
		// The robots' names and limits only: no secret or webhook needed.
		if cfg, err = cli.LoadWithoutSecrets(o.configPath, os.LookupEnv); err != nil {
			return fmt.Errorf("status: %w", err)
		}
		if cfg.Prefix != topo.Prefix {
			fmt.Fprintf(stderr, "warning: %s has prefix %q but --prefix is %q; showing %q\n",
				o.configPath, cfg.Prefix, topo.Prefix, topo.Prefix)
		}
	}

	js, closeConn, err := g.open(ctx, topo.OutStream())
	if err != nil {
		return err
	}
	defer closeConn()
	qctx, cancel := context.WithTimeout(ctx, g.timeout)
	queues, err := topo.RobotStatus(qctx, js)
	var usage []stream.Usage
	if err == nil {
		usage, err = topo.StreamUsage(qctx, js)
	}
	cancel()
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}

	rows := statusRows(queues, cfg, o.robot)
	var limErr error
	withLimiter := o.redisAddr != "" && cfg != nil
	switch {
	case withLimiter:
		limErr = inspectRows(ctx, g, o, rows, cfg)
	case o.redisAddr != "":
		fmt.Fprintln(stderr, "warning: no limiter columns: the workers keep a robot's window and cool-off under its "+
			"webhook's identity, which only robots.yaml gives; pass --config too")
	}
	if err := inspectPools(ctx, g, o, rows, cfg, withLimiter); err != nil && limErr == nil {
		limErr = err
	}
	if o.redisAddr != "" {
		if err := presenceRows(ctx, g, o, topo, rows); err != nil {
			fmt.Fprintf(stderr, "warning: the workers' presence was not read, so unserved robots are not shown: %v\n", err)
		}
	}
	ageRows(ctx, g, js, topo, rows)
	for i := range rows {
		rows[i].scan = o.scanInterval
	}
	for i := range rows {
		rows[i].Diagnoses = append(diagnose(topo, rows[i], cfg, o.configPath), nearRobotCap(rows[i], usage)...)
	}

	if o.asJSON {
		enc := json.NewEncoder(stdout)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return fmt.Errorf("status: %w", err)
			}
		}
		for _, u := range usage {
			if err := enc.Encode(u); err != nil {
				return fmt.Errorf("status: %w", err)
			}
		}
	} else {
		writeStatus(stdout, rows, withLimiter)
		writeDigests(stdout, rows) // status_digest.go
		writePools(stdout, rows)
		writeUsage(stdout, usage)
	}
	if limErr != nil {
		return fmt.Errorf("status: limiter columns unknown: %w", limErr)
	}
	return nil
}

// statusRows returns a row per robot, sorted by name: every robot JetStream
// knows and every robot of cfg, or only robot when it is set.
func statusRows(queues map[string]stream.RobotQueue, cfg *config.Config, robot string) []robotStatus {
	names := map[string]bool{}
	if robot != "" {
		names[robot] = true
	} else {
		for name := range queues {
			names[name] = true
		}
		if cfg != nil {
			for _, name := range append(cfg.Names(), poolNames(cfg)...) {
				names[name] = true
			}
		}
	}
	rows := make([]robotStatus, 0, len(names))
	for name := range names {
		rows = append(rows, robotStatus{Robot: name, RobotQueue: queues[name]})
	}
	slices.SortFunc(rows, func(a, b robotStatus) int { return strings.Compare(a.Robot, b.Robot) })
	return rows
}

// newStatusClient is the client of the workers' Redis that status reads.
func newStatusClient(o statusOptions) (*redis.Client, error) {
	var password string
	if o.redisPasswordEnv != "" {
		v, ok := os.LookupEnv(o.redisPasswordEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("--redis-password-env: environment variable %s is not set", o.redisPasswordEnv)
		}
		password = v
	}
	return redis.NewClient(&redis.Options{
		Addr:                  o.redisAddr,
		Password:              password,
		DB:                    o.redisDB,
		ClientName:            "botrelay-producer-status",
		DialTimeout:           2 * time.Second,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		MaxRetries:            1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	}), nil
}

// presenceRows gives each row the workers' registry: which robots a live
// worker has configured, and which one cannot serve.
func presenceRows(ctx context.Context, g *globals, o statusOptions, topo stream.Topology, rows []robotStatus) error {
	rdb, err := newStatusClient(o)
	if err != nil {
		return err
	}
	defer func() { _ = rdb.Close() }()
	pctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	m, err := ledger.NewRedis(rdb, topo.Prefix, 0).Members(pctx)
	if err != nil {
		return fmt.Errorf("redis at %s: %w", o.redisAddr, err)
	}
	for i := range rows {
		rows[i].presence = m
	}
	return nil
}

// ageRows reads the age of the oldest message of each row whose backlog
// has no consumer or no pull: workers create consumers and lanes when
// work arrives, so only an old such backlog is a problem. A failed read
// leaves the age unknown.
func ageRows(ctx context.Context, g *globals, js jetstream.JetStream, topo stream.Topology, rows []robotStatus) {
	actx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	now := time.Now()
	for i := range rows {
		q := rows[i].RobotQueue
		if q.Backlog == 0 || (q.Consumer && (q.Pending > 0 || q.Waiting > 0)) {
			continue
		}
		if age, err := fleet.OldestAge(actx, js, topo, rows[i].Robot, now); err == nil {
			rows[i].oldestAge = age
		}
	}
}

// inspectRows fills in each row's limiter view from the workers' Redis. It
// returns the first error that left a row without one.
func inspectRows(ctx context.Context, g *globals, o statusOptions, rows []robotStatus, cfg *config.Config) error {
	rdb, err := newStatusClient(o)
	if err != nil {
		return err
	}
	defer func() { _ = rdb.Close() }()
	lim, err := limiter.NewRedis(rdb, limiter.WithPrefix(g.prefix), limiter.WithRestartGuard(o.restartGuard),
		limiter.WithRestartQuiet(cfg.LongestCoolOff())) // as the workers run it
	if err != nil {
		return err
	}
	ictx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	// A robot whose webhook is not at hand (a ${VAR} not set here) is read
	// under the key its workers published.
	keyed := limiter.NewKeyedInspector(lim, rdb, g.prefix, 0)
	var first error
	for i := range rows {
		rb, ok := cfg.Robot(rows[i].Robot)
		if !ok {
			continue // not configured: its limiter key (the webhook's identity) is unknown
		}
		readDigest(ictx, rdb, g.prefix, &rows[i], rb) // status_digest.go
		key, insp := rb.LimitKey(), limiter.Inspector(lim)
		if cli.IsPlaceholder(rb.Webhook) {
			key, insp = rb.Name, keyed
		}
		ls := &limiterStatus{limit: cfg.Limit(rb)}
		rows[i].Limiter = ls
		if first != nil && errors.Is(first, limiter.ErrUnavailable) {
			ls.Error = "not read: Redis unavailable"
			continue
		}
		s, err := insp.Inspect(ictx, key, ls.limit)
		if err != nil {
			ls.Error = err.Error()
			if first == nil {
				first = fmt.Errorf("redis at %s: %w", o.redisAddr, err)
			}
			continue
		}
		ls.state = s
		ls.CoolOffLeftMS = ceilMS(s.CoolOffLeft)
		ls.QuietLeftMS = ceilMS(s.QuietLeft)
		in, next := s.InWindow, ceilMS(s.NextSlot)
		ls.Max, ls.InWindow, ls.NextSlotMS = ls.limit.Max, &in, &next
	}
	return first
}

// diagnose explains, one line each, what keeps row's robot from
// delivering; nothing when all looks well. The console prints the same
// lines (internal/fleet).
func diagnose(topo stream.Topology, row robotStatus, cfg *config.Config, configPath string) []string {
	in := fleet.Input{Topology: topo, Robot: row.Robot, Queue: row.RobotQueue, ConfigPath: configPath,
		Presence: row.presence, OldestAge: row.oldestAge, ScanInterval: row.scan}
	if cfg != nil {
		_, ok := cfg.Robot(row.Robot)
		if _, pool := configPool(cfg, row.Robot); pool {
			ok = true
		}
		in.Configured = &ok
	}
	if ls := row.Limiter; ls != nil && ls.Error == "" {
		in.Limiter = &fleet.Limiter{State: ls.state, Limit: ls.limit, HasLimit: true} // limiter columns need --config
	}
	return fleet.Diagnose(in)
}

// writeStatus prints rows as a table, then the diagnoses.
func writeStatus(w io.Writer, rows []robotStatus, withLimiter bool) {
	if len(rows) == 0 {
		fmt.Fprintln(w, "no robots: nothing queued, no robot consumers, no dead letters")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"ROBOT", "BACKLOG", "PENDING", "REDELIVERED", "WORKERS"}
	if withLimiter {
		head = append(head, "COOL-OFF", "IN-WINDOW", "NEXT-SLOT")
	}
	head = append(head, "DEAD-LETTERS")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range rows {
		cols := []string{oneLine(r.Robot, 64), u64(r.Backlog), strconv.Itoa(r.Pending), strconv.Itoa(r.Redelivered), strconv.Itoa(r.Waiting)}
		if !r.Consumer {
			cols[4] = "-" // no consumer: nobody could be pulling
		}
		if withLimiter {
			ls := r.Limiter
			switch {
			case ls == nil:
				cols = append(cols, "-", "-", "-") // not in robots.yaml
			case ls.Error != "":
				cols = append(cols, "?", "?", "?")
			default:
				cool, next := "-", "now"
				if ls.state.CoolOffLeft > 0 {
					cool = ceilSec(ls.state.CoolOffLeft).String()
				}
				if ls.state.NextSlot > 0 {
					next = ceilSec(ls.state.NextSlot).String()
				}
				cols = append(cols, cool, fmt.Sprintf("%d/%d", ls.state.InWindow, ls.limit.Max), next)
			}
		}
		cols = append(cols, u64(r.DeadLetters))
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	_ = tw.Flush()

	var problems []string
	for _, r := range rows {
		for _, d := range r.Diagnoses {
			problems = append(problems, oneLine(r.Robot, 64)+": "+d)
		}
	}
	fmt.Fprintln(w)
	if len(problems) == 0 {
		fmt.Fprintln(w, "no problems found")
		return
	}
	for _, p := range problems {
		fmt.Fprintln(w, p)
	}
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }

// fullWarning is the share of a limit from which status warns.
const fullWarning = 90

// nearRobotCap diagnoses a robot whose backlog nears the outbound stream's
// per-robot cap, beyond which its messages are refused.
func nearRobotCap(row robotStatus, usage []stream.Usage) []string {
	if len(usage) == 0 || usage[0].MaxMsgsPerSubject <= 0 {
		return nil
	}
	max := uint64(usage[0].MaxMsgsPerSubject)
	if row.Backlog*100 < max*fullWarning {
		return nil
	}
	return []string{fmt.Sprintf("backlog %d of at most %d per robot: at the cap new messages are refused (streams.out.max_messages_per_robot)", row.Backlog, max)}
}

// writeUsage prints the streams' usage and limits after the robots, and a
// line for each stream nearly full.
func writeUsage(w io.Writer, usage []stream.Usage) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM	MESSAGES	BYTES	MAX-BYTES	USED	MAX-AGE	PER-ROBOT")
	limit := func(n int64) string {
		if n <= 0 {
			return "-"
		}
		return strconv.FormatInt(n, 10)
	}
	for _, u := range usage {
		age := "-"
		if u.MaxAge > 0 {
			age = u.MaxAge.String()
		}
		used := "-"
		if u.MaxBytes > 0 {
			used = strconv.Itoa(u.FullPercent()) + "%"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\n", u.Stream, u.Messages, u.Bytes, limit(u.MaxBytes), used, age, limit(u.MaxMsgsPerSubject))
	}
	_ = tw.Flush()
	for _, u := range usage {
		if u.MaxBytes > 0 && u.FullPercent() >= fullWarning {
			fmt.Fprintf(w, "%s: %d%% of its %d bytes used: at the limit publishes are refused\n", u.Stream, u.FullPercent(), u.MaxBytes)
		}
	}
}

// plural formats n with the singular or plural noun.
func plural(n uint64, one, many string) string { return fleet.Plural(n, one, many) }

// ceilSec rounds d up to whole seconds: "wait at most".
func ceilSec(d time.Duration) time.Duration { return fleet.CeilSec(d) }

// ceilMS returns d in milliseconds, rounded up.
func ceilMS(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

const statusUsage = `producer status: why isn't my robot delivering?

  producer status [--robot R] [--redis ADDR] [--config robots.yaml] [--json]

  A row per robot (every robot with queued messages, a consumer or dead
  letters, and every robot of --config), then one line per problem found:
    BACKLOG         messages queued in the outbound stream (with the one
                    being delivered)
    PENDING         handed to a worker, not yet acknowledged (at most 1)
    REDELIVERED     of those, handed out more than once
    WORKERS         workers waiting for the robot's next message ("-": no
                    consumer, so no worker has ever served the robot)
    COOL-OFF        time left of the ban cool-off (with --redis and --config)
    IN-WINDOW       sends counted in the rolling window / the limit (with
                    --redis and --config)
    NEXT-SLOT       when the limiter grants the next send (with --redis and
                    --config)
    DEAD-LETTERS    dead letters kept for the robot

  With --config, each pool's members follow the diagnoses, with their
  COOL-OFF, IN-WINDOW and NEXT-SLOT: the workers send each of the pool's
  messages to the member whose next slot is earliest.

  --robot R         only robot R
  --redis ADDR      the workers' Redis (env BOTRELAY_REDIS_ADDR); without it,
                    no limiter columns. Read only: nothing is changed
  --redis-password-env NAME
                    read the Redis password from environment variable NAME
  --redis-db N      Redis database number (default 0)
  --restart-guard=false
                    the workers run without the restart guard
  --config FILE     the workers' robots.yaml, needed for the limiter columns:
                    the workers key a robot's window and cool-off by its
                    webhook's identity, and the file gives the limits and
                    cool-offs (secrets it names must be set)
  --json            one JSON object per robot and line (durations in ms)

Exit status 1 when the streams or Redis can't be read; the table is still
printed when only Redis failed ("?" in its columns).
`
