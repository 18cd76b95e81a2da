// Command robotsim serves the DingTalk/POPO/Feishu/WeCom robot simulator
// of package robotsim on a local address, for demos and manual testing.
//
//	robotsim -addr 127.0.0.1:8089 \
//	    -dingtalk 'token:SECsecret:alert,warn' \
//	    -popo 'hookid:secret::120' \
//	    -feishu 'token:secret:alert' \
//	    -wecom 'key' \
//	    -window 1m -ban 10m
//
// or, for a whole fleet, from a worker configuration file:
//
//	robotsim -addr 127.0.0.1:8089 -config worker.yaml -count-only
//
// serves every robot of the file (token from the webhook, secret and
// keywords as configured, the platform's limit and window of the file;
// the webhooks must point at -addr). -count-only keeps counters only, so
// that tens of thousands of robots and millions of messages fit;
// GET /_sim/stats serves the totals (breaches, duplicates, repeated
// contents, bad signatures) as JSON.
//
// A robot is written token[:secret[:keyword1,keyword2[:limit]]]; an empty
// secret means no signature check, no keywords means no keyword check and
// no limit the platform default. Tokens and secrets cannot contain ':'.
// The webhook URLs are printed at start; GET /_sim/robots lists every
// robot's counters and GET /_sim/robots/{token}/received its messages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/robotsim/simconfig"
)

// maxListed is the most robots whose webhooks are printed at start.
const maxListed = 20

func main() {
	// -h prints the usage and exits 2.
	cli.Main(cli.Command{Name: "robotsim", Run: run, HelpStatus: 2})
}

// listFlag collects a repeated flag's values. They are parsed after
// flag.Parse so that an error never echoes a value, which holds a secret.
type listFlag []string

func (f *listFlag) String() string { return "" }

func (f *listFlag) Set(v string) error {
	*f = append(*f, v)
	return nil
}

// parseRobot parses token[:secret[:keyword1,keyword2[:limit]]]. Errors
// never repeat the value, which holds a secret.
func parseRobot(platform, v string) (robotsim.Robot, error) {
	parts := strings.Split(v, ":")
	if len(parts) > 4 {
		return robotsim.Robot{}, errors.New("want token[:secret[:keywords[:limit]]]: too many ':'")
	}
	parts = append(parts, "", "", "")
	r := robotsim.Robot{Platform: platform, Token: parts[0], Secret: parts[1]}
	if r.Token == "" {
		return robotsim.Robot{}, errors.New("empty token")
	}
	for _, k := range strings.Split(parts[2], ",") {
		if k = strings.TrimSpace(k); k != "" {
			r.Keywords = append(r.Keywords, k)
		}
	}
	if parts[3] != "" {
		n, err := strconv.Atoi(parts[3])
		if err != nil || n < 0 {
			return robotsim.Robot{}, fmt.Errorf("limit %q is not a non-negative integer", parts[3])
		}
		r.Limit = n
	}
	return r, nil
}

// run serves until ctx is done. It prints the base URL and the webhook
// URLs to stdout, refusals (with -v) to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("robotsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var dingtalk, popo, feishu, wecom listFlag
	addr := fs.String("addr", "127.0.0.1:8089", "listen address")
	window := fs.Duration("window", time.Minute, "rolling rate window")
	ban := fs.Duration("ban", 10*time.Minute, "ban after a breach")
	verbose := fs.Bool("v", false, "log every refused request")
	configFile := fs.String("config", "", "serve every robot of this worker configuration file (YAML)")
	countOnly := fs.Bool("count-only", false, "keep counters only, no messages or request logs (for large fleets)")
	fs.Var(&dingtalk, "dingtalk",
		"DingTalk robot token[:secret[:kw1,kw2[:limit]]] (repeatable)")
	fs.Var(&popo, "popo",
		"POPO robot hookid[:secret[:kw1,kw2[:limit]]] (repeatable)")
	fs.Var(&feishu, "feishu",
		"Feishu robot token[:secret[:kw1,kw2[:limit]]] (repeatable; 5 per window/60 too)")
	fs.Var(&wecom, "wecom",
		"WeCom robot key[:[:[:limit]]] (repeatable; no signature, no keywords)")
	feishuBan := fs.Duration("feishu-ban", 0, "Feishu ban after a breach (none documented: 0, refusals only)")
	wecomBan := fs.Duration("wecom-ban", 0, "WeCom ban after a breach (none documented: 0, refusals only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var robots []robotsim.Robot
	for _, l := range []struct {
		platform string
		values   listFlag
	}{{robotsim.PlatformDingTalk, dingtalk}, {robotsim.PlatformPOPO, popo},
		{robotsim.PlatformFeishu, feishu}, {robotsim.PlatformWeCom, wecom}} {
		for i, v := range l.values {
			r, err := parseRobot(l.platform, v)
			if err != nil {
				return fmt.Errorf("-%s robot #%d: %w", l.platform, i+1, err)
			}
			robots = append(robots, r)
		}
	}
	if *configFile != "" {
		fromFile, err := simconfig.LoadConfig(*configFile, nil)
		if err != nil {
			return fmt.Errorf("-config: %w", err)
		}
		robots = append(robots, fromFile...)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	sim := robotsim.New(robotsim.Config{
		Window:    *window,
		Ban:       *ban,
		FeishuBan: *feishuBan,
		WeComBan:  *wecomBan,
		CountOnly: *countOnly,
		Logger:    slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	})
	for _, r := range robots {
		if err := sim.AddRobot(r); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := robotsim.Serve(ln, sim)
	defer srv.Close()

	fmt.Fprintf(stdout, "robotsim listening on %s (window %s, ban %s)\n", srv.URL, *window, *ban)
	if len(robots) > maxListed {
		fmt.Fprintf(stdout, "%d robots (not listed)\n", len(robots))
		robots = nil
	}
	for _, r := range robots {
		desc := []string{"unsigned"}
		if r.Secret != "" {
			desc[0] = "signed"
		}
		if len(r.Keywords) > 0 {
			desc = append(desc, "keywords "+strings.Join(r.Keywords, ","))
		}
		if r.Limit > 0 {
			desc = append(desc, "limit "+strconv.Itoa(r.Limit))
		}
		fmt.Fprintf(stdout, "%-8s %s (%s)\n", r.Platform, srv.WebhookURL(r.Token), strings.Join(desc, ", "))
	}
	fmt.Fprintf(stdout, "inspect  %s/_sim/robots\n", srv.URL)
	fmt.Fprintf(stdout, "totals   %s/_sim/stats\n", srv.URL)

	<-ctx.Done()
	return nil
}
