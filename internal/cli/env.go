package cli

import "net"

// Environment variables that give the commands' connection flags their
// defaults, the same in every command.
const (
	// EnvNATSURL names the NATS server(s), comma-separated (--nats).
	EnvNATSURL = "BOTRELAY_NATS_URL"
	// EnvPrefix is the deployment's subject and stream prefix (--prefix).
	EnvPrefix = "BOTRELAY_PREFIX"
	// EnvRedisAddr is the Redis of the limiter and the ledger (--redis).
	EnvRedisAddr = "BOTRELAY_REDIS_ADDR"
)

// DefaultNATSURL is the server used when neither --nats nor
// [EnvNATSURL] is given.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// Env is what a command takes from its surroundings, so that tests can
// run it in parallel without touching the process's environment.
type Env struct {
	// Lookup reads environment variables: os.LookupEnv in production.
	Lookup func(string) (string, bool)
	// Listening, when set, is told the address of the command's server
	// once it listens (a test passes ":0" and learns the port here).
	Listening func(net.Addr)
}

// EnvOr returns the value of environment variable name read through
// lookup, or def when it is unset or empty.
func EnvOr(lookup func(string) (string, bool), name, def string) string {
	if v, ok := lookup(name); ok && v != "" {
		return v
	}
	return def
}
