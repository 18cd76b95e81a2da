package config

import (
	"errors"
	"fmt"
	"slices"

	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
)

// ErrUnknownTarget is matched by the error of [Config.Expand] for a name
// that is neither a robot, a pool nor a group.
var ErrUnknownTarget = errors.New("config: unknown target")

// Targets: robots, pools, groups and apps share one namespace, the names
// producers address. A robot and a pool are single targets (one envelope
// on the name's subject); a group is expanded by producers into one
// envelope per member, each a robot or a pool. Decisions:
//
//   - A pool of one robot is allowed: producers can address a pool before
//     its second robot is added, and the pool then behaves as its robot.
//     An empty pool is an error.
//   - A group inside a group is refused (list its members instead): the
//     expansion is one level, so a copy's id "<id>.<member>" names the
//     member it went to and no cycle can exist.
//   - A group naming both a pool and a robot of that pool is refused: the
//     pool's robots share its chat group, which would get the message
//     twice.

// resolveTargets validates the pools and groups against the robots and
// apps (robots maps a robot's name to its index).
func (c *Config) resolveTargets(robots map[string]int) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	// taken names each name already used: "robots[2]", "apps[0]", "pools[1]".
	taken := map[string]string{}
	for name, i := range robots {
		taken[name] = fmt.Sprintf("robots[%d]", i)
	}
	for i, app := range c.Apps {
		if _, dup := taken[app.Name]; !dup && app.Name != "" {
			taken[app.Name] = fmt.Sprintf("apps[%d]", i)
		}
	}
	claim := func(at, name string) bool {
		switch {
		case name == "":
			bad("%s: name: required", at)
		case !nameRE.MatchString(name):
			bad("%s: name: must be 1-64 characters of [A-Za-z0-9_-]", at)
		default:
			if other, dup := taken[name]; dup {
				bad("%s: name: also the name of %s (robots, pools, groups and apps share one namespace)", at, other)
				return false
			}
			taken[name] = at
			return true
		}
		return false
	}

	pools := map[string]int{}
	poolOf := map[string]int{} // robot -> index of its pool
	for i, p := range c.Pools {
		at := label("pools", i, p.Name)
		if claim(fmt.Sprintf("pools[%d]", i), p.Name) {
			pools[p.Name] = i
		}
		if len(p.Robots) == 0 {
			bad("%s: robots: at least one robot required", at)
		}
		platform, first := "", ""
		seen := map[string]int{}
		for k, m := range p.Robots {
			mat := fmt.Sprintf("%s: robots[%d]", at, k)
			if j, dup := seen[m]; dup {
				bad("%s %q: duplicate of robots[%d]", mat, clipName(m), j)
				continue
			}
			seen[m] = k
			j, ok := robots[m]
			if !ok {
				bad("%s %q: %s", mat, clipName(m), c.notARobot(m))
				continue
			}
			if other, dup := poolOf[m]; dup {
				bad("%s %q: already a robot of pools[%d] %q (a robot is in at most one pool)", mat, m, other, c.Pools[other].Name)
			} else {
				poolOf[m] = i
			}
			rb := c.Robots[j]
			if !slices.Contains(delivery.PlatformNames(), rb.Platform) {
				continue // reported with the robot
			}
			switch {
			case platform == "":
				platform, first = rb.Platform, m
			case rb.Platform != platform:
				bad("%s %q: platform %s differs from %s of %q (a pool's robots are of one platform)", mat, m, rb.Platform, platform, first)
			}
		}
	}

	for i, g := range c.Groups {
		at := label("groups", i, g.Name)
		claim(fmt.Sprintf("groups[%d]", i), g.Name)
		if len(g.Members) == 0 {
			bad("%s: members: at least one robot or pool required", at)
		}
		seen := map[string]int{}
		for k, m := range g.Members {
			mat := fmt.Sprintf("%s: members[%d]", at, k)
			if j, dup := seen[m]; dup {
				bad("%s %q: duplicate of members[%d]", mat, clipName(m), j)
				continue
			}
			seen[m] = k
			if _, ok := robots[m]; ok {
				continue
			}
			if _, ok := pools[m]; ok {
				continue
			}
			if slices.ContainsFunc(c.Groups, func(o Group) bool { return o.Name == m }) {
				bad("%s %q: a group (groups do not nest: list its members instead)", mat, m)
				continue
			}
			bad("%s %q: %s", mat, clipName(m), c.notARobot(m))
		}
		// A pool and one of its robots in one group: the chat group would
		// get the message twice.
		for k, m := range g.Members {
			pi, ok := poolOf[m]
			if !ok {
				continue
			}
			if pk := slices.Index(g.Members, c.Pools[pi].Name); pk >= 0 {
				bad("%s: members[%d] %q is a robot of pool %q, also members[%d] (its chat group would get each message twice)",
					at, k, m, c.Pools[pi].Name, pk)
			}
		}
	}
	return errs
}

// label is "kind[i]", plus the name when it is a valid one (never some
// other value put there).
func label(kind string, i int, name string) string {
	at := fmt.Sprintf("%s[%d]", kind, i)
	if nameRE.MatchString(name) {
		at += fmt.Sprintf(" %q", name)
	}
	return at
}

// clipName bounds a name echoed in an error.
func clipName(s string) string {
	if len(s) > 64 {
		return s[:61] + "..."
	}
	return s
}

// notARobot says what m is when a robot was expected.
func (c *Config) notARobot(m string) string {
	switch {
	case slices.ContainsFunc(c.Pools, func(p Pool) bool { return p.Name == m }):
		return "a pool, not a robot (pools do not nest)"
	case slices.ContainsFunc(c.Apps, func(a App) bool { return a.Name == m }):
		return "an app, not a robot"
	default:
		return "not a configured robot"
	}
}

// PoolOf returns the pool named name.
func (c *Config) PoolOf(name string) (*Pool, bool) {
	i := slices.IndexFunc(c.Pools, func(p Pool) bool { return p.Name == name })
	if i < 0 {
		return nil, false
	}
	return &c.Pools[i], true
}

// MemberOf returns the pool robot is a robot of, if any.
func (c *Config) MemberOf(robot string) (*Pool, bool) {
	i := slices.IndexFunc(c.Pools, func(p Pool) bool { return slices.Contains(p.Robots, robot) })
	if i < 0 {
		return nil, false
	}
	return &c.Pools[i], true
}

// GroupOf returns the group named name.
func (c *Config) GroupOf(name string) (*Group, bool) {
	i := slices.IndexFunc(c.Groups, func(g Group) bool { return g.Name == name })
	if i < 0 {
		return nil, false
	}
	return &c.Groups[i], true
}

// GroupMembers returns the members of the group named name (a copy), and
// false when name is not a group; pass it to publisher.WithGroups.
func (c *Config) GroupMembers(name string) ([]string, bool) {
	g, ok := c.GroupOf(name)
	if !ok {
		return nil, false
	}
	return slices.Clone(g.Members), true
}

// Expand returns the single targets (robots or pools) a message addressed
// to target goes to: a group's members in file order, or target itself
// for a robot or a pool. Another name is an error matching
// [ErrUnknownTarget].
func (c *Config) Expand(target string) ([]string, error) {
	if g, ok := c.GroupOf(target); ok {
		return slices.Clone(g.Members), nil
	}
	if _, ok := c.Robot(target); ok {
		return []string{target}, nil
	}
	if _, ok := c.PoolOf(target); ok {
		return []string{target}, nil
	}
	return nil, fmt.Errorf("%w: %q is not a robot, pool or group", ErrUnknownTarget, clipName(target))
}

// TargetPlatform returns the platform of a single target: a robot's, or
// a pool's (its robots', one platform). A group, which may mix platforms,
// and an unknown name give false.
func (c *Config) TargetPlatform(target string) (string, bool) {
	if rb, ok := c.Robot(target); ok {
		return rb.Platform, true
	}
	if p, ok := c.PoolOf(target); ok && len(p.Robots) > 0 {
		if rb, ok := c.Robot(p.Robots[0]); ok {
			return rb.Platform, true
		}
	}
	return "", false
}

// TargetSize returns the size rules of a single target's platform (see
// [Config.TargetPlatform]); the defaults for any other name.
func (c *Config) TargetSize(target string) envelope.Limits {
	p, ok := c.TargetPlatform(target)
	if !ok {
		return envelope.Limits{}
	}
	d, _ := delivery.LookupPlatform(p)
	return d.Size
}

// TargetKeywords returns the security keywords of a single target: a
// robot's, or for a pool those of its first robot (its robots post to
// one chat group).
func (c *Config) TargetKeywords(target string) []string {
	if p, ok := c.PoolOf(target); ok && len(p.Robots) > 0 {
		target = p.Robots[0]
	}
	rb, _ := c.Robot(target)
	return slices.Clone(rb.Keywords)
}

// Targets returns the names a message may be published to, one envelope
// each: the robots, then the pools, in file order.
func (c *Config) Targets() []string {
	out := c.Names()
	for _, p := range c.Pools {
		out = append(out, p.Name)
	}
	return out
}
