// Package benchscale is the fleet-scale benchmark behind `make bench-scale`
// (issue #7): it builds nats-server (from go.mod), the worker and the
// simulator, runs them as separate processes against the real Redis, and
// measures the idle cost of a large configured fleet, a fan-out, a
// saturation run and the throughput per core against a bare JetStream
// loop, printing each figure beside its target.
//
// It drives the binaries only through their flags and configuration file
// and the public packages, so that it measures whatever worker the tree
// holds. The pieces that need no servers (the fleet's configuration,
// /proc and /varz readings, the figures' table) are tested on their own.
package benchscale

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/botrelay/botrelay/pkg/robotsim"
)

// Fleet describes the robots of one scenario's configuration file, which
// drives both the workers and the simulator.
type Fleet struct {
	// Prefix is the configuration's prefix: the streams and the Redis keys.
	Prefix string
	// SimURL is the simulator's base URL.
	SimURL string
	// Robots is how many robots; robot i is DingTalk when Mix and i is
	// even, POPO otherwise.
	Robots int
	Mix    bool
	// Lifted sets every platform's limit to LiftedLimit a minute:
	// throughput without rate limits. The margin stays the production
	// default (LiftedMargin): it also sets the write deadline after a
	// reservation, and a margin of a millisecond made most requests miss
	// it (not sent, tried again) under load.
	Lifted bool
	// Lanes, when set, is the configuration's lanes setting ("direct").
	Lanes string
	// Extra robots are appended as is (e.g. the bare loop's target).
	Extra []robotsim.Robot
}

// LiftedLimit is the per-minute limit of a [Fleet] with Lifted set.
const LiftedLimit = 100_000_000

// LiftedMargin is the margin of a [Fleet] with Lifted set: the
// configuration's default.
const LiftedMargin = 5 * time.Second

// Robot is robot i of f: its name, platform, token and secret.
func (f Fleet) Robot(i int) (name string, r robotsim.Robot) {
	r = robotsim.Robot{Platform: robotsim.PlatformPOPO, Token: fmt.Sprintf("p%06d", i), Secret: fmt.Sprintf("popo%06d", i)}
	if f.Mix && i%2 == 0 {
		r = robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: fmt.Sprintf("d%06d", i), Secret: fmt.Sprintf("SECdt%06d", i)}
	}
	return fmt.Sprintf("r%06d", i), r
}

// WriteConfig writes f as a worker configuration file to w.
func (f Fleet) WriteConfig(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "prefix: %s\n", f.Prefix)
	if f.Lanes != "" {
		fmt.Fprintf(&b, "lanes: %s\n", f.Lanes)
	}
	if f.Lifted {
		b.WriteString("platforms:\n")
		for _, p := range []string{robotsim.PlatformDingTalk, robotsim.PlatformPOPO} {
			fmt.Fprintf(&b, "  %s: {limit: %d, window: 1m, margin: %s}\n", p, LiftedLimit, LiftedMargin)
		}
	}
	b.WriteString("robots:\n")
	line := func(name string, r robotsim.Robot) {
		fmt.Fprintf(&b, "  - {name: %s, platform: %s, webhook: %q", name, r.Platform, robotsim.WebhookURL(f.SimURL, r.Platform, r.Token))
		if r.Secret != "" {
			fmt.Fprintf(&b, ", secret: %q", r.Secret)
		}
		b.WriteString("}\n")
	}
	for i := range f.Robots {
		line(f.Robot(i))
	}
	for _, r := range f.Extra {
		line("x"+r.Token, r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// QuotaUsed is the share of a robot's quota its deliveries used: accepted
// over limit × (span / window), at most 1.
func QuotaUsed(accepted, limit int, span, window time.Duration) float64 {
	quota := float64(limit) * span.Seconds() / window.Seconds()
	if quota <= 0 {
		return 0
	}
	return min(float64(accepted)/quota, 1)
}
