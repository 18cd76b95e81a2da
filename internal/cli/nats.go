package cli

import (
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go"
)

// RedactURL replaces the user information (user, password or token) of
// each URL in a comma-separated list with "REDACTED", so that a NATS
// server list can be logged or put in an error: "nats://u:p@h:4222, h2:4222"
// becomes "nats://REDACTED@h:4222,h2:4222". It does not parse the URLs,
// so a malformed one is redacted too.
func RedactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if at := strings.LastIndex(p, "@"); at >= 0 {
			scheme := ""
			if j := strings.Index(p, "://"); j >= 0 && j < at {
				scheme = p[:j+3]
			}
			p = scheme + "REDACTED@" + p[at+1:]
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// LogNATSEvents returns the NATS connection options that log to log what
// happens after the connection is made: a disconnection (error), a
// reconnection (info, with the server's redacted URL) and an asynchronous
// error such as a slow consumer (error).
func LogNATSEvents(log *slog.Logger) []nats.Option {
	return []nats.Option{
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Error("NATS disconnected; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("NATS reconnected", "server", RedactURL(c.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Error("NATS error", "err", err)
		}),
	}
}
