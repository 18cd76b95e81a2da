package publisher_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/stream"
)

// WithSizeRules checks each envelope under its robot's platform: the same
// text fits the DingTalk robot and is refused for the WeCom robot, or
// split for it.
func ExampleWithSizeRules() {
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
	topo := stream.Topology{Prefix: "sizes"}
	if err := topo.Ensure(ctx, js); err != nil {
		log.Fatal(err)
	}
	platformOf := map[string]string{"ops-ding": delivery.PlatformDingTalk, "ops-wecom": delivery.PlatformWeCom}
	pub, err := publisher.New(js, topo, publisher.WithSizeRules(func(robot string) envelope.Limits {
		p, _ := delivery.LookupPlatform(platformOf[robot])
		return p.Size
	}))
	if err != nil {
		log.Fatal(err)
	}
	log3k := strings.Repeat("disk full on db-3\n", 170) // 3,060 bytes
	for _, robot := range []string{"ops-ding", "ops-wecom"} {
		_, err := pub.Publish(ctx, envelope.New(robot, envelope.Message{Text: &envelope.Text{Content: log3k}}))
		fmt.Println(robot, "too large:", errors.Is(err, envelope.ErrTooLarge))
	}
	res, err := pub.PublishSplit(ctx, envelope.New("ops-wecom", envelope.Message{Text: &envelope.Text{Content: log3k}},
		envelope.WithID("disk-log")))
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res {
		fmt.Println(r.ID)
	}
	// Output:
	// ops-ding too large: false
	// ops-wecom too large: true
	// disk-log.p1
	// disk-log.p2
}
