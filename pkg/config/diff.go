package config

import (
	"reflect"
	"slices"
	"strings"
)

// Diff is what changed from one validated configuration to the next, as a
// running worker sees it.
type Diff struct {
	// Added, Changed and Removed name the robots, pools and apps (an app
	// is its reply robot) added, changed (any setting, secret and
	// effective rate limit included; a pool's members) and removed, each
	// sorted.
	Added, Changed, Removed []string
	// Restart names, sorted, the settings that changed but are only read
	// at start (prefix, concurrency, ack_wait, hold_max, replicas, retry,
	// streams, platforms.<p>.errcodes): a running worker keeps the old
	// values until it is restarted. Groups are not a worker's concern
	// (producers and the gateway expand them).
	Restart []string
}

// Empty reports whether nothing changed.
func (d Diff) Empty() bool {
	return len(d.Added)+len(d.Changed)+len(d.Removed)+len(d.Restart) == 0
}

// runtimeFields are the top-level settings a running worker takes on
// reload: the robots, pools and apps, and the platforms' rates (which make
// the robots' limits and cool-offs); groups, which workers do not read.
// Every other field is read at start only.
var runtimeFields = []string{"robots", "apps", "platforms", "pools", "groups"}

// Compare returns what changed from old to new, both validated by [Parse].
func Compare(old, new *Config) Diff {
	var d Diff
	index := func(c *Config) map[string]diffEntry {
		m := make(map[string]diffEntry, len(c.Robots)+len(c.Apps))
		for i := range c.Robots {
			m[c.Robots[i].Name] = diffEntry{cfg: c, rb: &c.Robots[i]}
		}
		for i := range c.Apps {
			m[c.Apps[i].Name] = diffEntry{cfg: c, app: &c.Apps[i]}
		}
		for i := range c.Pools {
			m[c.Pools[i].Name] = diffEntry{cfg: c, pool: &c.Pools[i]}
		}
		return m
	}
	before, after := index(old), index(new)
	for name, a := range after {
		b, ok := before[name]
		switch {
		case !ok:
			d.Added = append(d.Added, name)
		case !b.same(a):
			d.Changed = append(d.Changed, name)
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			d.Removed = append(d.Removed, name)
		}
	}

	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(new).Elem()
	for i := 0; i < ov.NumField(); i++ {
		key := yamlKey(ov.Type().Field(i))
		if key == "" || slices.Contains(runtimeFields, key) {
			continue
		}
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			d.Restart = append(d.Restart, key)
		}
	}
	for p, ol := range old.Platforms {
		if !reflect.DeepEqual(ol.Errcodes, new.Platforms[p].Errcodes) {
			d.Restart = append(d.Restart, "platforms."+p+".errcodes")
		}
	}
	for _, s := range [][]string{d.Added, d.Changed, d.Removed, d.Restart} {
		slices.Sort(s)
	}
	return d
}

// diffEntry is one robot or app of a configuration.
type diffEntry struct {
	cfg  *Config
	rb   *Robot
	app  *App
	pool *Pool
}

// same reports whether the robot, app or pool of e is configured exactly
// as o's: its own fields and the limit and cool-off it gets from its
// platform; a pool's members.
func (e diffEntry) same(o diffEntry) bool {
	c, rb, app := o.cfg, o.rb, o.app
	switch {
	case e.pool != nil && o.pool != nil:
		return slices.Equal(e.pool.Robots, o.pool.Robots)
	case e.rb != nil && rb != nil:
		return reflect.DeepEqual(*e.rb, *rb) && reflect.DeepEqual(e.cfg.Limit(*e.rb), c.Limit(*rb)) &&
			e.cfg.CoolOff(*e.rb) == c.CoolOff(*rb)
	case e.app != nil && app != nil:
		return reflect.DeepEqual(*e.app, *app) && reflect.DeepEqual(e.cfg.AppLimit(*e.app), c.AppLimit(*app)) &&
			e.cfg.Platforms[e.app.Platform].CoolOff == c.Platforms[app.Platform].CoolOff
	}
	return false // a robot became an app or a pool, or the reverse
}

// yamlKey is the key of a Config field in the file; "" for a field not read
// from it.
func yamlKey(f reflect.StructField) string {
	key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if key == "-" {
		return ""
	}
	return key
}
