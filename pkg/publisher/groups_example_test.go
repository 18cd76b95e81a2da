package publisher_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/stream"
)

func ExamplePublisher_Send() {
	url, stop := startServer()
	defer stop()
	nc, err := nats.Connect(url)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo := stream.Topology{Prefix: "example"}
	if err := topo.Ensure(ctx, js); err != nil { // workers do this at start
		log.Fatal(err)
	}

	// The groups of robots.yaml; a service gives config.Config.GroupMembers.
	members := func(name string) ([]string, bool) {
		if name == "all-sre" {
			return []string{"sre-bj", "sre-sh", "oncall"}, true // oncall is a pool
		}
		return nil, false
	}
	pub, err := publisher.New(js, topo, publisher.WithGroups(members))
	if err != nil {
		log.Fatal(err)
	}
	for _, target := range []string{"all-sre", "oncall"} {
		env := envelope.New(target, envelope.Message{Text: &envelope.Text{Content: "db-3 failed over"}},
			envelope.WithID("failover-db-3"))
		results, err := pub.Send(ctx, env)
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range results {
			fmt.Printf("%s robot=%s seq=%d\n", r.ID, r.Robot, r.Ack.Sequence)
		}
	}
	// Output:
	// failover-db-3.sre-bj robot=sre-bj seq=1
	// failover-db-3.sre-sh robot=sre-sh seq=2
	// failover-db-3.oncall robot=oncall seq=3
	// failover-db-3 robot=oncall seq=4
}
