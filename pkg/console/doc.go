// Package console is botrelay's operator console: a web page and a JSON
// API (under /api/v1/) that show every robot's queue, limiter and dead
// letters, and let operators replay or delete dead letters.
//
// It reads what the workers leave behind and keeps no database: JetStream
// (per-robot backlog, pending messages, consumers, the dead-letter stream),
// the limiter's state in Redis through [limiter.Inspector] (the same
// read-only inspection "producer status" uses), and optionally the
// workers' /metrics for the deliveries chart. A [Server] refreshes one
// snapshot of the fleet in the background ([Config.Refresh]), so the pages
// filter, sort and page it in memory however many robots there are.
//
// It needs no secret: robots are known by name, platform and limit
// ([Robot]). Dead-letter records hold no webhook token or secret (the
// worker redacts them). Mutating calls take JSON bodies only and refuse
// cross-site browser requests ([http.CrossOriginProtection]); replays use
// the dead-letter dedup id, so a repeated click stores one copy.
// Authentication ([Config.Token], [Config.ProxyHeader]) is the command's
// to configure.
package console
