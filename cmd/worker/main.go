// Command worker delivers the messages producers publish to NATS JetStream
// to the configured DingTalk and POPO robots, within each robot's rate
// limit, shared through Redis by every worker.
//
//	worker --config robots.yaml [--nats URL] [--redis ADDR] [flags]
//	worker --check-config --config robots.yaml
//
// Flags (the environment supplies some defaults):
//
//	--config FILE            robot configuration (YAML, see examples/robots.yaml); required
//	--check-config           validate the file, print a summary and exit (1 with every problem)
//	--config-poll D          how often the file is checked for changes (default 2s; 0: only
//	                         on SIGHUP)
//	--nats URL               NATS server(s), comma-separated; env BOTRELAY_NATS_URL,
//	                         default nats://127.0.0.1:4222
//	--nats-connect-wait D    how long to keep trying NATS at start (default 30s)
//	--redis ADDR             Redis host:port; env BOTRELAY_REDIS_ADDR, default 127.0.0.1:6379
//	--redis-password-env N   read the Redis password from environment variable N
//	--redis-db N             Redis database number (default 0)
//	--redis-autopipeline     batch the lanes' concurrent commands to a single Redis into
//	                         pipelines (default true; a Cluster is always sent them alone)
//	--limiter redis|memory   memory keeps limits and the ledger in this process:
//	                         only correct with a single worker (default redis)
//	--limiter-state FILE     with --limiter memory: save windows and cool-offs to FILE on
//	                         a clean shutdown, restore (and remove) it at start; without
//	                         a valid FILE every robot waits out the quiet time
//	--restart-guard=false    do not hold robots for the quiet time (the longest cool-off,
//	                         at least one window) when the limiter state is new: a first
//	                         start, a Redis restart or evictions, a memory limiter without
//	                         state (only where nothing else posts; default true)
//	--metrics-addr ADDR      serve /metrics, /healthz and /readyz (default :9090, "" disables)
//	--metrics-listen ADDR    serve /metrics on ADDR instead (e.g. 127.0.0.1:9091), leaving
//	                         only the probes on --metrics-addr
//	--metrics-token-env N    /metrics requires "Authorization: Bearer <value of N>"
//	--log-level L            debug, info, warn or error (default info)
//	--log-format F           text or json (default text)
//	--name NAME              this worker's name in dead letters (default host-pid)
//
// The robots are reloaded, without a restart, when the file's content
// changes (an edit, a rename over it, a Kubernetes ConfigMap update) and
// on SIGHUP. The new file is validated completely first: a file with any
// problem changes nothing, each problem is logged, and
// botrelay_config_reload_failures_total counts it. Settings read only at
// start (prefix, concurrency, ack_wait, hold_max, replicas, retry, streams,
// errcode rules, and every flag) are logged as needing a restart and kept.
//
// SIGINT or SIGTERM drains: messages being delivered are finished and
// acknowledged, the others are handed back, and the process exits 0.
// Webhooks and secrets are never logged.
//
// Unless the environment sets GOGC, the worker runs its collector at
// GOGC=400 with a soft memory limit of 192 MiB (GOMEMLIMIT overrides the
// limit): its live heap is small and its garbage per message large. In a
// container with less memory, set GOMEMLIMIT to ~90 % of it.
//
// Exit status: 0 on success (and -h), 1 on a failure (a bad config file,
// an unreachable NATS), 2 on a usage error.
package main

import (
	"context"
	"os"
	"runtime/debug"

	"github.com/redis/go-redis/v9"

	"github.com/botrelay/botrelay/internal/cli"
)

func main() {
	// go-redis prints its connection-pool complaints with its own global
	// logger, outside our log format. Drop them: every Redis failure
	// surfaces in the worker's own logs (limiter or ledger unavailable).
	redis.SetLogger(quietRedis{})
	if _, set := os.LookupEnv("GOGC"); !set {
		// The worker's live heap is small (about 20 MB at 20,000 robots)
		// and its garbage per message large: at Go's default of 100 the
		// collector cost about a fifth of the worker's CPU per message
		// (docs/design/fleet.md, "Worker CPU per message").
		debug.SetGCPercent(defaultGCPercent)
		if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
			// A soft limit keeps a large fleet's heap (5 × live at 400)
			// from growing past it: the collector runs sooner instead.
			debug.SetMemoryLimit(defaultMemoryLimit)
		}
	}
	cli.Main(cli.Command{Name: "worker", Run: run})
}

// The worker's GOGC and soft memory limit unless the environment sets
// GOGC (then Go's own rules apply) or GOMEMLIMIT.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 192 << 20
)

// quietRedis discards go-redis's internal log lines.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}
