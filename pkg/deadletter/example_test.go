package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/stream"
)

// startServer starts an embedded JetStream server for the example; an
// operator's tool connects to the deployment's NATS instead.
func startServer() (url string, stop func()) {
	dir, err := os.MkdirTemp("", "deadletter-example")
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

// An operator lists a robot's dead letters and replays them once the cause
// (here a missing keyword in the robot's security settings) is fixed.
func Example() {
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

	// What a worker writes when the platform refuses a message for good.
	env := envelope.New("ops", envelope.Message{Text: &envelope.Text{Content: "disk full on db-3"}}, envelope.WithID("alert-7"))
	err = deadletter.Publish(ctx, js, topo, deadletter.Record{
		Envelope: env, Robot: "ops", Reason: deadletter.ReasonPermanent,
		ErrCode: 310000, ErrMsg: "keywords not in content", Attempts: 1,
		DeadAt: time.Now(), Subject: topo.OutSubject("ops"), Sequence: 1,
	})
	if err != nil {
		log.Fatal(err)
	}

	entries, err := deadletter.List(ctx, js, topo, "ops", 100)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Printf("seq %d: %s %s errcode=%d\n", e.Seq, e.Record.Envelope.ID, e.Record.Reason, e.Record.ErrCode)
		if _, err := deadletter.Replay(ctx, js, topo, e.Seq, false); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("seq %d: replayed to %s\n", e.Seq, topo.OutSubject(e.Record.Robot))
		// A second click within the duplicate window sends nothing.
		_, err := deadletter.Replay(ctx, js, topo, e.Seq, true)
		fmt.Println(errors.Is(err, deadletter.ErrAlreadyReplayed))
	}
	// Output:
	// seq 1: alert-7 permanent errcode=310000
	// seq 1: replayed to example.out.ops
	// true
}
