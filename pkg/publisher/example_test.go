package publisher_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/stream"
)

// startServer starts an embedded JetStream server for the example; a real
// service connects to its deployment's NATS instead.
func startServer() (url string, stop func()) {
	dir, err := os.MkdirTemp("", "publisher-example")
	if err != nil {
		log.Fatal(err)
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		log.Fatal("nats-server did not start")
	}
	return s.ClientURL(), func() { s.Shutdown(); s.WaitForShutdown(); os.RemoveAll(dir) }
}

func ExamplePublisher_Publish() {
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

	pub, err := publisher.New(js, topo)
	if err != nil {
		log.Fatal(err)
	}
	env := envelope.New("ops", envelope.Message{Text: &envelope.Text{Content: "disk full on db-3"}},
		envelope.WithID("alert-db-3-disk"), envelope.WithTTL(10*time.Minute))
	for range 2 { // a retried publish is deduplicated by the envelope id
		ack, err := pub.Publish(ctx, env)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("seq=%d duplicate=%t\n", ack.Sequence, ack.Duplicate)
	}

	// One notification to several robots, each copy on its own.
	results, err := pub.FanOut(ctx, env, []string{"ops", "dev"})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range results {
		fmt.Printf("%s robot=%s seq=%d\n", r.ID, r.Robot, r.Ack.Sequence)
	}
	// Output:
	// seq=1 duplicate=false
	// seq=1 duplicate=true
	// alert-db-3-disk.ops robot=ops seq=2
	// alert-db-3-disk.dev robot=dev seq=3
}
