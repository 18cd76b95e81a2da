// Command gateway is botrelay's HTTP front for services not written in Go:
// they POST JSON messages, the gateway publishes them to NATS JetStream
// (see package pkg/gateway for the endpoints and docs/gateway.md for
// examples) and answers once the stream has stored them.
//
//	gateway --listen :8080 --nats URL --tokens-file tokens.yaml --config robots.yaml
//
// Flags (the environment supplies some defaults):
//
//	--listen ADDR            HTTP address (default :8080)
//	--nats URL               NATS server(s), comma-separated; env BOTRELAY_NATS_URL,
//	                         default nats://127.0.0.1:4222
//	--prefix P               subject and stream prefix; env BOTRELAY_PREFIX, else the
//	                         --config file's prefix, else "botrelay"
//	--tokens-file FILE       named tokens with robot scopes, rates and quotas (see
//	                         docs/gateway.md); reloaded on SIGHUP
//	--token-env NAME         also accept the bearer tokens in environment variable NAME
//	                         (comma-separated) for every robot, without a rate
//	--no-auth                accept every request without a token: the gateway refuses
//	                         to start without a token unless this is given
//	--redis ADDR             Redis for the tokens' rates and quotas; env
//	                         BOTRELAY_REDIS_ADDR, default 127.0.0.1:6379
//	--redis-password-env N   environment variable holding the Redis password
//	--tls-cert F, --tls-key F  serve HTTPS (no terminating proxy)
//	--metrics-addr ADDR      serve Prometheus metrics at GET /metrics (default: none)
//	--robots a,b             accept only these robots (422 for others)
//	--config FILE            take the accepted robots and pools from the worker's config
//	                         file (names, platforms, keywords; no secret needed; excludes
//	                         --robots); its groups are expanded (one copy per member)
//	--alertmanager-template F  Go text/template defining "title" and "text" for
//	                         POST /v1/alertmanager/{target} (default: the built-in one);
//	                         checked at start, and must carry each keyword robot's
//	                         keyword ({{.Keyword}})
//	--max-body N             largest request body in bytes (default 1 MiB)
//	--shutdown-timeout D     how long requests in flight may take at shutdown (default 10s)
//	--log-level L            debug, info, warn or error (default info)
//	--log-format F           text or json (default text)
//
// The gateway starts even when NATS is down: GET /readyz answers 503 and
// POSTs 503 with Retry-After until it connects. SIGINT or SIGTERM stops
// accepting connections, lets requests in flight finish and exits 0.
// SIGHUP rereads the tokens file; a file with a problem is logged and the
// tokens in use are kept.
//
// Exit status: 0 on success (and -h), 1 on a failure, 2 on a usage error.
package main

import "github.com/botrelay/botrelay/internal/cli"

func main() {
	cli.Main(cli.Command{Name: "gateway", Run: run})
}
