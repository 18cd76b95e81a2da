// Command console serves botrelay's operator console: the fleet (every
// robot's backlog, workers, limiter and dead letters, problems first), the
// dead letters with replay and delete, charts, and the JSON API under
// /api/v1/ that the page uses and scripts can call.
//
//	console --config robots.yaml [--listen 127.0.0.1:8081] [flags]
//
// Flags (the environment supplies some defaults):
//
//	--config FILE              the workers' robots.yaml; only robot names, platforms and
//	                           limits are read (webhooks and secrets are dropped unread)
//	--listen ADDR              default 127.0.0.1:8081; an address beyond loopback needs
//	                           --auth-token-env or --auth-proxy-header
//	--auth-token-env NAME      the operator token is in environment variable NAME:
//	                           "Authorization: Bearer <token>", or sign in at /login
//	--auth-proxy-header NAME   an authenticating proxy (OIDC) in front sets header NAME
//	                           (e.g. X-Auth-Request-User); requests without it are refused
//	--nats URL                 env BOTRELAY_NATS_URL, default nats://127.0.0.1:4222
//	--redis ADDR               the workers' Redis (env BOTRELAY_REDIS_ADDR, default
//	                           127.0.0.1:6379; comma-separated nodes: a Redis Cluster);
//	                           "" disables the limiter columns
//	--redis-password-env NAME, --redis-db N, --redis-cluster, --restart-guard=false
//	                           as the worker's
//	--worker-metrics URLS      the workers' /metrics (comma-separated; a host name is
//	                           resolved to every worker, e.g. a headless Service), for
//	                           the deliveries chart
//	--worker-metrics-token-env NAME
//	                           bearer token for --worker-metrics
//	--refresh D                how often the fleet is read (default 10s)
//	--log-level L, --log-format F
//
// Exit status: 0 after SIGINT or SIGTERM, 1 on a failure, 2 on a usage
// error.
package main

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/botrelay/botrelay/internal/cli"
)

func main() {
	redis.SetLogger(quietRedis{})
	cli.Main(cli.Command{Name: "console", Run: run})
}

// quietRedis discards go-redis's internal log lines; limiter errors show
// on the page.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}
