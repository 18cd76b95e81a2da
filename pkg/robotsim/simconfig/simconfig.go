// Package simconfig builds the robot simulator's robots from a worker
// configuration file, so one file drives both the workers and the
// simulator (robotsim --config). It is apart from package robotsim, which
// the test helpers import, so that package config's tests can use them.
package simconfig

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/robotsim"
)

// FromConfig returns a simulated robot for every robot of a worker
// configuration, so that one file drives the workers and the simulator:
// the token from the webhook ([robotsim.TokenFromWebhook]), the secret and
// keywords as configured, and the limit and window of the robot's
// platform in the file (its platforms section, the platform's published
// limits by default): the simulator enforces what the platform enforces,
// not the lower rate a robot may be given. Feishu's per-second limit is
// the platform's first further window. Errors name the robot, never its
// webhook or secret.
func FromConfig(c *config.Config) ([]robotsim.Robot, error) {
	out := make([]robotsim.Robot, 0, len(c.Robots))
	var errs []error
	for i, rb := range c.Robots {
		tok, err := robotsim.TokenFromWebhook(rb.Platform, rb.Webhook)
		if err != nil {
			errs = append(errs, fmt.Errorf("robots[%d] %q: %w", i, rb.Name, err))
			continue
		}
		pl := c.Platforms[rb.Platform]
		r := robotsim.Robot{Platform: rb.Platform, Token: tok, Secret: rb.Secret, Keywords: rb.Keywords,
			Limit: pl.Limit, Window: time.Duration(pl.Window)}
		if rb.Platform == robotsim.PlatformFeishu && len(pl.Windows) > 0 {
			r.BurstLimit = pl.Windows[0].Limit
		}
		out = append(out, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// LoadConfig reads a worker configuration file (see package config; ${NAME}
// and secret_env are looked up with lookup, nil meaning os.LookupEnv) and
// returns its robots as [FromConfig] does.
func LoadConfig(file string, lookup func(string) (string, bool)) ([]robotsim.Robot, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("robotsim: %w", err)
	}
	c, err := config.Parse(data, lookup)
	if err != nil {
		return nil, fmt.Errorf("robotsim: %s: %w", file, err)
	}
	return FromConfig(c)
}
