package main

import (
	"github.com/botrelay/botrelay/pkg/config"
	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/worker"
)

// poolRobots returns a worker robot for each of cfg's pools: the pool's
// name and members, and its members' platform. The members are cfg's
// robots; the worker checks them (and config validation before it).
func poolRobots(cfg *config.Config) []worker.Robot {
	out := make([]worker.Robot, 0, len(cfg.Pools))
	for _, p := range cfg.Pools {
		rb := worker.Robot{Robot: delivery.Robot{Name: p.Name}, Pool: append([]string(nil), p.Robots...)}
		if len(p.Robots) > 0 {
			if m, ok := cfg.Robot(p.Robots[0]); ok {
				rb.Platform = m.Platform
			}
		}
		out = append(out, rb)
	}
	return out
}
