// Package limiter is the per-robot gate every worker passes before each
// HTTP request to a chat platform.
//
// The platforms ban a robot for ten minutes as soon as it sends one message
// more than its budget (20 a minute for DingTalk, 60 for POPO) and do not say
// whether the minute is fixed or rolling. The package therefore promises the
// strong form: across every process sharing the same store, no robot is ever
// granted more than [Limit.Max] slots in any rolling [Limit.Window] +
// [Limit.Margin]. It uses a sliding-window log (every grant's timestamp is
// kept until it leaves the window), which is exact, rather than GCRA with
// burst = rate, which admits Max+1 sends within one rolling window.
//
// Two implementations of [Limiter] share those semantics:
//
//   - [Redis] keeps the log in a Redis sorted set per robot and decides with
//     one atomic Lua script per call (one round trip, time from Redis TIME,
//     cluster safe: both keys of a robot share a hash tag). Use it whenever
//     more than one process sends.
//   - [Memory] keeps the log in process memory, with an injectable clock: for
//     a single process, the demo, and tests of callers.
//
// A granted slot counts whether or not the message is then sent. When the platform nevertheless answers "sending too fast",
// call [Limiter.CoolOff] so that no process sends to that robot until the
// ban is over.
//
// Errors are fail-closed: Reserve never returns Allowed=true together with an
// error. [ErrUnavailable] means the decision could not be made (Redis
// unreachable, timed out, or answering with an error); treat it as "not
// allowed, retry soon". [Wait] loops over Reserve and does exactly that.
//
// Robot names become part of Redis keys: pass a name that is safe to log
// and names the platform robot (the worker passes the identity of the
// robot's webhook, see config.RobotIdentity), never a webhook URL or access
// token.
//
// After the state is lost (Redis restarted, restored, evicting keys; a
// [Memory] started without its saved state) the restart guard grants
// nothing for a quiet time that should cover the platforms' longest
// cool-off: see [WithRestartGuard], [WithRestartQuiet], [Memory.Quiet] and
// [Memory.RestoreState]. [Redis.Load] refuses a Redis that may evict keys.
package limiter
