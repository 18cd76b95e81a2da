// Command benchscale runs the fleet-scale benchmark (`make bench-scale`,
// issue #7): nats-server built from go.mod, worker processes and the robot
// simulator as separate processes, against the real Redis, printing each
// figure beside its target.
//
//	benchscale [-scenario idle,fanout,saturation,throughput] [-idle-window 1m]
//	    [-redis 127.0.0.1:6379] [-workers 3] [-keep]
//
// Run it from the module's root (it runs go build there). Sizes default to
// the issue's: 20,000 idle robots, a fan-out to 10,000, 2,000 saturated
// POPO robots with 120 messages each, 500 robots for throughput. Exit
// status 0 when every figure meets its target, 1 otherwise.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/botrelay/botrelay/internal/benchscale"
	"github.com/botrelay/botrelay/internal/cli"
)

func main() {
	cli.Main(cli.Command{Name: "benchscale", Run: run, HelpStatus: 2})
}

// errMissed is returned when a figure misses its target.
var errMissed = errors.New("targets missed")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchscale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o benchscale.Options
	scenarios := fs.String("scenario", strings.Join(benchscale.Scenarios, ","), "scenarios to run, comma-separated")
	fs.StringVar(&o.RedisAddr, "redis", "127.0.0.1:6379", "Redis host:port (each scenario uses its own key prefix)")
	fs.IntVar(&o.Workers, "workers", 3, "worker processes (idle, fanout, saturation)")
	fs.StringVar(&o.Lanes, "lanes", "", "the workers' lanes setting: consumer or direct (default: the configuration's)")
	fs.IntVar(&o.IdleRobots, "idle-robots", 20000, "configured robots of the idle scenario")
	fs.DurationVar(&o.IdleWindow, "idle-window", time.Minute, "idle measurement window")
	fs.DurationVar(&o.ReadyTimeout, "ready-timeout", 60*time.Second, "how long to wait for the workers' /readyz")
	fs.DurationVar(&o.SettleTimeout, "settle-timeout", 3*time.Minute, "how long to wait for the outbound stream's consumer count to settle after ready")
	fs.IntVar(&o.FanoutRobots, "fanout-robots", 10000, "robots of the fan-out")
	fs.DurationVar(&o.FanoutWait, "fanout-wait", 60*time.Second, "how long to wait for the fan-out's deliveries")
	fs.IntVar(&o.SatRobots, "sat-robots", 2000, "POPO robots of the saturation run")
	fs.IntVar(&o.SatPerRobot, "sat-per-robot", 120, "messages per saturated robot")
	fs.DurationVar(&o.SatWindow, "sat-window", 2*time.Minute, "the saturation run's measurement window (its quota)")
	fs.IntVar(&o.TPRobots, "tp-robots", 500, "robots of the throughput run")
	fs.IntVar(&o.TPMessages, "tp-messages", 20000, "messages of the throughput run")
	fs.IntVar(&o.TPBareMessages, "tp-bare-messages", 20000, "messages of the bare JetStream loop")
	fs.IntVar(&o.TPConcurrency, "tp-concurrency", 32, "the bare loop's concurrent posts (the worker's default concurrency)")
	keep := fs.Bool("keep", false, "keep the work directory (binaries, logs, configs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.Scenarios = strings.Split(*scenarios, ",")
	dir, err := os.MkdirTemp("", "benchscale-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintf(stderr, "work directory %s (kept)\n", dir)
	} else {
		defer func() { _ = os.RemoveAll(dir) }()
	}
	o.Dir = dir
	if o.ModuleDir, err = os.Getwd(); err != nil {
		return err
	}
	o.Log = stderr
	var r benchscale.Report
	runErr := benchscale.Run(ctx, o, &r)
	r.Print(stdout)
	if runErr != nil {
		return runErr
	}
	if r.Failed() > 0 {
		return fmt.Errorf("%w: %d", errMissed, r.Failed())
	}
	return nil
}
