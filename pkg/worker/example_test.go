package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/botrelay/botrelay/pkg/stream"
	"github.com/botrelay/botrelay/pkg/worker"
)

// A worker delivering one message to a (simulated) DingTalk robot. In
// production the limiter and the ledger are the Redis ones, shared by every
// worker.
func ExampleWorker_Run() {
	dir, _ := os.MkdirTemp("", "botrelay-example-")
	defer os.RemoveAll(dir)
	ns, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	go ns.Start()
	ns.ReadyForConnections(10 * time.Second)
	defer ns.Shutdown()
	nc, _ := nats.Connect(ns.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)

	sim := robotsim.NewServer(robotsim.Config{})
	defer sim.Close()
	_ = sim.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: "tok", Secret: "SECexample"})

	delivered := make(chan worker.Event, 1)
	sender, _ := delivery.New()
	w, err := worker.New(js, worker.Config{
		Robots: []worker.Robot{{
			Robot:   delivery.Robot{Name: "ops", Platform: "dingtalk", Webhook: sim.WebhookURL("tok"), Secret: "SECexample"},
			Limit:   limiter.Limit{Max: 20, Window: time.Minute, Margin: 2 * time.Second},
			CoolOff: 10 * time.Minute,
		}},
		Sender:  sender,
		Limiter: limiter.NewMemory(nil),
		Ledger:  ledger.NewMemory(),
		Logger:  slog.New(slog.DiscardHandler),
		Observe: func(ev worker.Event) {
			if ev.Kind == "delivered" {
				delivered <- ev
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()

	// Run creates the streams; publish once they exist.
	pub, _ := publisher.New(js, stream.Topology{})
	env := envelope.New("ops", envelope.Message{Text: &envelope.Text{Content: "disk full on db-3"}})
	for {
		if _, err := pub.Publish(ctx, env); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	ev := <-delivered
	fmt.Println(ev.Kind, "after", ev.Attempts, "attempt:", sim.Received("tok")[0].Content)
	cancel()
	fmt.Println("drained:", <-done)
	// Output:
	// delivered after 1 attempt: disk full on db-3
	// drained: <nil>
}
