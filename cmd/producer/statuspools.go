package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/botrelay/botrelay/pkg/config"
)

// poolMember is one member of a pool's row in "producer status": the
// limiter's view of it (nil without --redis).
type poolMember struct {
	Robot   string         `json:"robot"`
	Limiter *limiterStatus `json:"limiter,omitempty"`
}

// configPool returns cfg's pool of that name.
func configPool(cfg *config.Config, name string) (config.Pool, bool) {
	if cfg == nil {
		return config.Pool{}, false
	}
	if p, ok := cfg.PoolOf(name); ok {
		return *p, true
	}
	return config.Pool{}, false
}

// poolNames returns the names of cfg's pools.
func poolNames(cfg *config.Config) []string {
	var out []string
	for _, p := range cfg.Pools {
		out = append(out, p.Name)
	}
	return out
}

// fillPools sets the members of every pool's row and, with inspect, reads
// each member's limiter state (the worker sends each message to the
// member whose next slot is earliest). It returns the first limiter error.
func fillPools(rows []robotStatus, cfg *config.Config, inspect func([]robotStatus) error) error {
	var members []robotStatus
	for _, r := range rows {
		if p, ok := configPool(cfg, r.Robot); ok {
			for _, m := range p.Robots {
				members = append(members, robotStatus{Robot: m})
			}
		}
	}
	if len(members) == 0 {
		return nil
	}
	var err error
	if inspect != nil {
		err = inspect(members)
	}
	for i := range rows {
		p, ok := configPool(cfg, rows[i].Robot)
		if !ok {
			continue
		}
		for _, m := range members[:len(p.Robots)] {
			rows[i].Members = append(rows[i].Members, poolMember{Robot: m.Robot, Limiter: m.Limiter})
		}
		members = members[len(p.Robots):]
	}
	return err
}

// inspectPools is [fillPools] reading the workers' Redis as inspectRows does.
func inspectPools(ctx context.Context, g *globals, o statusOptions, rows []robotStatus, cfg *config.Config, withLimiter bool) error {
	var inspect func([]robotStatus) error
	if withLimiter {
		inspect = func(ms []robotStatus) error { return inspectRows(ctx, g, o, ms, cfg) }
	}
	return fillPools(rows, cfg, inspect)
}

// writePools prints each pool's members with their limiter state, after
// the diagnoses; nothing without pools.
func writePools(w io.Writer, rows []robotStatus) {
	var pools []robotStatus
	for _, r := range rows {
		if len(r.Members) > 0 {
			pools = append(pools, r)
		}
	}
	if len(pools) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tMEMBER\tCOOL-OFF\tIN-WINDOW\tNEXT-SLOT")
	for _, p := range pools {
		for _, m := range p.Members {
			cool, in, next := "-", "-", "-"
			switch ls := m.Limiter; {
			case ls == nil:
			case ls.Error != "":
				cool, in, next = "?", "?", "?"
			default:
				if ls.state.CoolOffLeft > 0 {
					cool = ceilSec(ls.state.CoolOffLeft).String()
				}
				in, next = fmt.Sprintf("%d/%d", ls.state.InWindow, ls.limit.Max), "now"
				if ls.state.NextSlot > 0 {
					next = ceilSec(ls.state.NextSlot).String()
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", oneLine(p.Robot, 64), oneLine(m.Robot, 64), cool, in, next)
		}
	}
	_ = tw.Flush()
}
