package worker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/worker"
)

// A robot added by a reload is announced at once: another worker's sweep
// (every 200ms here) must not take it for a robot nobody serves while the
// reloading worker waits for its next presence interval (an hour here),
// and so delete its consumer and dead-letter its messages as unknown_robot.
func TestReloadAddedRobotIsNotSwept(t *testing.T) {
	r := newRig(t, "", robotsim.Config{})
	base := r.addRobot(robotsim.PlatformPOPO, "base", "sec", "sec", nil, popoLimit)
	other := r.addRobot(robotsim.PlatformPOPO, "other", "sec", "sec", nil, popoLimit)
	// One message per 20s: the later ones wait in the stream.
	late := r.addRobot(robotsim.PlatformPOPO, "late", "sec", "sec", nil, limiter.Limit{Max: 1, Window: 20 * time.Second})

	var a *worker.Worker
	r.startWorker(func(c *worker.Config) {
		c.Robots = []worker.Robot{base}
		c.SweepInterval = time.Hour // announces once an hour
	})
	a = r.workers[0]
	r.startWorker(func(c *worker.Config) { c.Robots = []worker.Robot{other} }) // sweeps every 200ms
	r.publish(envelope.New("base", text("warm-up")))
	r.waitExactly("base", "warm-up")

	require.NoError(t, a.Reload([]worker.Robot{base, late}))
	for i := range 3 {
		r.publish(envelope.New("late", text(fmt.Sprint("m", i))))
	}
	r.waitPosts("late", expect{queued: true, timeout: 15 * time.Second}, "m0")
	time.Sleep(2 * time.Second) // ten sweeps of the other worker
	require.Empty(t, r.deadLetters(), "a configured robot's messages are not unknown_robot")
	require.Equal(t, uint64(2), r.queuedFor("late"), "both later messages still queued for their robot")
}
