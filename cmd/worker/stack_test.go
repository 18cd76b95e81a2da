package main

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
)

// testStack is what a test of the binary runs against: NATS with a
// topology of the test's own, Redis (the topology's keys deleted at
// cleanup) and a robot simulator.
type testStack struct {
	natsURL string
	js      jetstream.JetStream
	topo    stream.Topology
	rdb     *redis.Client
	sim     *robotsim.Server
}

func newTestStack(t *testing.T) testStack {
	t.Helper()
	s := testStack{natsURL: testenv.NATSURL(t)}
	_, s.js = testenv.Connect(t, s.natsURL)
	s.topo = testenv.Topology(t, s.js)
	s.rdb, _ = testenv.Redis(t)
	t.Cleanup(func() {
		ctx := context.Background()
		if keys, _ := s.rdb.Keys(ctx, s.topo.Prefix+":*").Result(); len(keys) > 0 {
			_ = s.rdb.Del(ctx, keys...).Err()
		}
	})
	s.sim = robotsim.NewServer(robotsim.Config{Logger: testLogger()})
	t.Cleanup(s.sim.Close)
	return s
}
