// Command demo runs botrelay end to end in one process, with nothing to
// install but Go: an embedded NATS JetStream server (file storage in a
// temporary directory, removed at exit), the DingTalk/POPO robot simulator
// with its time scaled down (a 6 s window and a 5 s ban stand for the
// platforms' minute and ten minutes), one worker with the in-process limiter
// and ledger, and a producer that publishes a burst covering every path a
// message can take: rate-limit waits, retries after 503s, a platform
// throttle answered by a cool-off, and dead letters for a wrong secret, a
// missing keyword, an unconfigured robot and a malformed payload.
//
//	go run ./cmd/demo [-window 6s] [-quiet] [-verbose] [-timeout 2m]
//
// It narrates what happens, prints a summary per robot and the dead letters
// read back from the dead-letter stream, and exits once every message is
// settled: 0 when nothing was lost and no robot was pushed past its limit
// (other than the one deliberately configured with a wrong limit), 1
// otherwise. Secrets and webhook tokens are random and never printed.
package main

import "github.com/botrelay/botrelay/internal/cli"

func main() {
	// -h prints the usage and exits 2.
	cli.Main(cli.Command{Name: "demo", Run: run, HelpStatus: 2})
}
