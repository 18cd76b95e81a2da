package config

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/botrelay/botrelay/pkg/limiter"
)

// App is one enterprise (internal) robot: the platform sends its
// callbacks (a message @-mentioning it, a direct chat) to the gateway's
// POST /v1/callbacks/<platform>/<name>, and replies to them are delivered
// through the callback's session webhook by the app's reply robot, a
// robot of the same name. Only DingTalk has such callbacks.
type App struct {
	Name     string `yaml:"name"`
	Platform string `yaml:"platform"`
	// AppSecret verifies the callbacks' signatures; set exactly one of
	// app_secret, app_secret_env (the name of an environment variable)
	// and app_secret_file (read and trimmed).
	AppSecret     string `yaml:"app_secret"`
	AppSecretEnv  string `yaml:"app_secret_env"`
	AppSecretFile string `yaml:"app_secret_file"`
	// Limit and Window bound the replies to one conversation (the
	// platform's robot limit applies to the group's session); default
	// the platform's limit.
	Limit  int      `yaml:"limit"`
	Window Duration `yaml:"window"`
}

// resolveApps loads the apps' secrets and validates them; robots are the
// robots' names (an app shares the subject space of robots, so its name
// may not be a robot's).
func (c *Config) resolveApps(lookup func(string) (string, bool), robots map[string]int) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	seen := map[string]int{}
	for i := range c.Apps {
		app := &c.Apps[i]
		at := fmt.Sprintf("apps[%d]", i)
		if nameRE.MatchString(app.Name) {
			at += fmt.Sprintf(" %q", app.Name)
		}
		switch {
		case app.Name == "":
			bad("%s: name: required", at)
		case !nameRE.MatchString(app.Name):
			bad("%s: name: must be 1-64 characters of [A-Za-z0-9_-]", at)
		default:
			if j, dup := seen[app.Name]; dup {
				bad("%s: name: duplicate of apps[%d]", at, j)
			}
			if j, dup := robots[app.Name]; dup {
				bad("%s: name: also the name of robots[%d] (an app's replies go through a robot of its name)", at, j)
			}
			seen[app.Name] = i
		}
		switch {
		case app.Platform == "":
			bad("%s: platform: required (dingtalk)", at)
		case app.Platform != DingTalk:
			// Never the value: it may come from the environment.
			bad("%s: platform: not supported (only dingtalk has enterprise-robot callbacks)", at)
		}
		if err := app.loadSecret(lookup); err != nil {
			bad("%s: %v", at, err)
		}
		if app.Limit < 0 || app.Window < 0 {
			bad("%s: limit and window must not be negative", at)
		} else if pl, ok := c.Platforms[DingTalk]; ok && (app.Limit > 0 || app.Window > 0) {
			if l := c.AppLimit(*app); !withinPlatform(l, WindowLimit{Limit: pl.Limit, Window: pl.Window}) {
				bad("%s: limit: %d per %s exceeds the %s limit of %d per %s", at, l.Max, l.Window, DingTalk, pl.Limit, time.Duration(pl.Window))
			}
		}
	}
	return errs
}

func (app *App) loadSecret(lookup func(string) (string, bool)) error {
	n := 0
	for _, s := range []string{app.AppSecret, app.AppSecretEnv, app.AppSecretFile} {
		if s != "" {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("app_secret: required (set app_secret, app_secret_env or app_secret_file)")
	case n > 1:
		return errors.New("app_secret: set only one of app_secret, app_secret_env, app_secret_file")
	case app.AppSecretEnv != "":
		v, ok := lookup(app.AppSecretEnv)
		if !ok || v == "" {
			return fmt.Errorf("app_secret_env: environment variable %s is not set", app.AppSecretEnv)
		}
		app.AppSecret = v
	case app.AppSecretFile != "":
		v, err := readSecretFile("app_secret_file", app.AppSecretFile)
		if err != nil {
			return err
		}
		app.AppSecret = v
	}
	return nil
}

// App returns the named app.
func (c *Config) App(name string) (App, bool) {
	i := slices.IndexFunc(c.Apps, func(a App) bool { return a.Name == name })
	if i < 0 {
		return App{}, false
	}
	return c.Apps[i], true
}

// AppNames returns the apps' names in file order.
func (c *Config) AppNames() []string {
	out := make([]string, len(c.Apps))
	for i, a := range c.Apps {
		out[i] = a.Name
	}
	return out
}

// AppLimit returns the rate limit of app's replies to one conversation.
func (c *Config) AppLimit(app App) limiter.Limit {
	pl := c.Platforms[app.Platform]
	l := limiter.Limit{Max: pl.Limit, Window: time.Duration(pl.Window), Margin: time.Duration(pl.Margin)}
	if app.Limit > 0 {
		l.Max = app.Limit
	}
	if app.Window > 0 {
		l.Window = time.Duration(app.Window)
	}
	return l
}
