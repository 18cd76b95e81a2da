package inbound_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/inbound"
	"github.com/botrelay/botrelay/pkg/stream"
)

// startServer starts an embedded JetStream server for the example.
func startServer() (url string, stop func()) {
	dir, err := os.MkdirTemp("", "inbound-example")
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

// A service acting on the helpdesk app's callbacks: each event is acked
// when the handler returns nil.
func ExampleSubscribe() {
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
	// What the gateway does with a verified callback.
	e, err := inbound.ParseDingTalk("helpdesk", []byte(`{"msgtype":"text","text":{"content":" 查询工单 4711"},"msgId":"m1",`+
		`"conversationId":"cid1","senderNick":"Li Lei","sessionWebhook":"https://oapi.dingtalk.com/robot/sendBySession?session=x",`+
		`"sessionWebhookExpiredTime":1796164200000}`), time.Now())
	if err != nil {
		log.Fatal(err)
	}
	if _, err := inbound.Publish(ctx, js, topo, e); err != nil {
		log.Fatal(err)
	}

	_ = inbound.Subscribe(ctx, js, topo, "helpdesk", func(_ context.Context, m *inbound.Msg) error {
		fmt.Printf("%s from %s: %s\n", m.Event.ID, m.Event.SenderNick, m.Event.Text)
		cancel()
		return nil
	})
	// Output: helpdesk.1 from Li Lei: 查询工单 4711
}
