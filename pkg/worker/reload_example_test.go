package worker_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/ledger"
	"github.com/botrelay/botrelay/pkg/limiter"
	"github.com/botrelay/botrelay/pkg/worker"
)

// Robots are added, changed and removed without a restart; an invalid set
// is refused whole and the worker keeps the one it has. (cmd/worker calls
// Reload on SIGHUP and when the configuration file changes.)
func ExampleWorker_Reload() {
	dir, _ := os.MkdirTemp("", "botrelay-example-")
	defer os.RemoveAll(dir)
	ns, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	go ns.Start()
	ns.ReadyForConnections(10 * time.Second)
	defer ns.Shutdown()
	nc, _ := nats.Connect(ns.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)

	robot := func(name string) worker.Robot {
		return worker.Robot{
			Robot: delivery.Robot{Name: name, Platform: "dingtalk", Webhook: "https://oapi.dingtalk.com/robot/send?access_token=" + name},
			Limit: limiter.Limit{Max: 20, Window: time.Minute, Margin: 2 * time.Second},
		}
	}
	sender, _ := delivery.New()
	w, err := worker.New(js, worker.Config{
		Robots:  []worker.Robot{robot("ops"), robot("dev")},
		Sender:  sender,
		Limiter: limiter.NewMemory(nil),
		Ledger:  ledger.NewMemory(),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(w.Robots())
	// "dev" removed, "sre" added.
	if err := w.Reload([]worker.Robot{robot("ops"), robot("sre")}); err != nil {
		fmt.Println(err)
	}
	fmt.Println(w.Robots())
	// A robot without a limit: refused, nothing changes.
	err = w.Reload([]worker.Robot{robot("ops"), {Robot: delivery.Robot{Name: "broken"}}})
	fmt.Println(errors.Is(err, worker.ErrInvalidConfig), w.Robots())
	// Output:
	// [dev ops]
	// [ops sre]
	// true [ops sre]
}
