package publisher_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/stream"
)

func ExamplePublisher_PublishSplit() {
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
	if err := topo.Ensure(ctx, js); err != nil {
		log.Fatal(err)
	}
	pub, err := publisher.New(js, topo)
	if err != nil {
		log.Fatal(err)
	}

	// 45,000 bytes of log lines: too long for one DingTalk post.
	logs := strings.Repeat(strings.Repeat("x", 89)+"\n", 500)
	env := envelope.New("ops", envelope.Message{Markdown: &envelope.Markdown{Title: "Build log", Text: logs}},
		envelope.WithID("build-77"))
	results, err := pub.PublishSplit(ctx, env)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range results {
		fmt.Printf("%s robot=%s seq=%d\n", r.ID, r.Robot, r.Ack.Sequence)
	}
	// Output:
	// build-77.p1 robot=ops seq=1
	// build-77.p2 robot=ops seq=2
	// build-77.p3 robot=ops seq=3
}
