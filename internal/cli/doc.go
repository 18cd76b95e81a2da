// Package cli holds what botrelay's commands (cmd/worker, cmd/gateway,
// cmd/producer, cmd/demo, cmd/robotsim) share about being a command-line
// program, so that they behave alike:
//
//   - [Main] runs a command with a context that SIGINT and SIGTERM cancel,
//     prints its error as "name: error" and exits with [ExitCode]: 0 on
//     success and -h, 2 for a [UsageError], 1 for any other failure;
//   - [Env], [EnvOr] and the environment variables every command reads
//     ([EnvNATSURL], [EnvPrefix]), so that tests run a command with an
//     environment of their own instead of the process's;
//   - [AddLogFlags] and [NewLogger] for --log-level and --log-format;
//   - [RedactURL] and [LogNATSEvents], which keep NATS credentials out of
//     errors and logs.
//
// It is internal: only the commands use it, and signal handling stays in
// cmd/ and here, never in pkg/.
package cli
