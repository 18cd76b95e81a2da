package gateway_test

import (
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/gateway"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/stream"
)

// A service's HTTP front: NATS connection → publisher → gateway → server.
// (Compiled, not run: it needs a NATS server.)
func ExampleNew() {
	nc, err := nats.Connect(nats.DefaultURL, nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	pub, err := publisher.New(js, stream.Topology{Prefix: "botrelay"})
	if err != nil {
		log.Fatal(err)
	}
	g, err := gateway.New(pub, gateway.Options{
		Tokens: strings.Split(os.Getenv("GATEWAY_TOKENS"), ","),
		Robots: []string{"ops", "dev"},
		Ready:  nc.IsConnected,
	})
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: ":8080", Handler: g, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
