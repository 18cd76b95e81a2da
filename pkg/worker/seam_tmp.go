package worker

import (
	"maps"
	"slices"
)

// This file stands in for definitions that branch h/fleet (lazy lanes)
// adds to pkg/worker; it is deleted when both branches are merged.

// ownership tells whether this worker should run robot's lane now; a nil
// ownership owns every robot.
type ownership interface{ Owns(robot string) bool }

// rescan asks for an immediate scan of the robots with messages (h/fleet:
// the lazy lanes' scan); a no-op here.
func (w *Worker) rescan() {}

// robotNames returns the names of the robots currently configured, sorted
// (h/fleet: under the lock that Reload takes).
func (w *Worker) robotNames() []string { return slices.Sorted(maps.Keys(w.robots)) }
