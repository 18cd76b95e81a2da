package gateway_test

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

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

// A tokens file: each team's token, which robots it may address, and how
// fast.
func ExampleParseTokens() {
	tokens, err := gateway.ParseTokens([]byte(`tokens:
  - name: team-a
    token_env: TEAM_A_TOKEN
    robots: ["team-a-*", "ops-alerts"]
    rate: 50
    burst: 100
    max_messages_per_minute: 600
`), func(string) (string, bool) { return "team-a-secret-token", true })
	if err != nil {
		log.Fatal(err)
	}
	t := tokens[0]
	fmt.Println(t.Name, t.Allows("team-a-db"), t.Allows("team-b-db"), t.Rate, t.MaxMessagesPerMinute)
	// Output: team-a true false 50 600
}

// Named tokens with scopes and rates shared through Redis by every
// gateway replica. (Compiled, not run: it needs NATS and Redis.)
func ExampleNewLimiter() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	pub, _ := publisher.New(js, stream.Topology{})
	data, err := os.ReadFile("tokens.yaml")
	if err != nil {
		log.Fatal(err)
	}
	tokens, err := gateway.ParseTokens(data, os.LookupEnv)
	if err != nil {
		log.Fatal(err)
	}
	lim, _ := gateway.NewLimiter(redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}), "botrelay")
	g, err := gateway.New(pub, gateway.Options{Access: tokens, Limiter: lim, Ready: nc.IsConnected})
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe(":8080", g))
}

// The OpenAPI document served at GET /openapi.json.
func ExampleOpenAPI() {
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(gateway.OpenAPI(), &doc); err != nil {
		log.Fatal(err)
	}
	fmt.Println(doc.OpenAPI, len(doc.Paths), "paths")
	// Output: 3.0.3 9 paths
}

// Reloading the tokens file (the command does it on SIGHUP). (Compiled,
// not run.)
func ExampleGateway_SetTokens() {
	var g *gateway.Gateway // from gateway.New
	data, err := os.ReadFile("tokens.yaml")
	if err != nil {
		log.Fatal(err)
	}
	tokens, err := gateway.ParseTokens(data, os.LookupEnv)
	if err == nil {
		err = g.SetTokens(tokens)
	}
	if err != nil {
		log.Printf("tokens not reloaded, the ones in use are kept: %v", err)
	}
}

// Metrics per token name, on a registry the command serves.
func ExampleNewMetrics() {
	reg := prometheus.NewRegistry()
	m := gateway.NewMetrics(reg)
	_ = gateway.Options{Metrics: m, NoAuth: true} // and the other options
	mfs, _ := reg.Gather()
	fmt.Println(len(mfs), "metric families until the first request")
	// Output: 0 metric families until the first request
}
