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

// A helpdesk service answers the callback it got as event helpdesk.7,
// mentioning its sender.
func ExamplePublisher_Reply() {
	url, stop := startServer()
	defer stop()
	nc, err := nats.Connect(url)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	topo := stream.Topology{Prefix: "example"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := topo.Ensure(ctx, js); err != nil {
		log.Fatal(err)
	}
	pub, err := publisher.New(js, topo)
	if err != nil {
		log.Fatal(err)
	}
	env := envelope.New("", envelope.Message{Text: &envelope.Text{Content: "@staff-1 工单 4711 已处理"}})
	env.ID, env.At = "answer-4711", &envelope.At{UserIDs: []string{"staff-1"}}
	ack, err := pub.Reply(ctx, "helpdesk.7", env)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(env.Robot, env.ReplyTo, ack.Sequence)
	// Output: helpdesk helpdesk.7 1
}
