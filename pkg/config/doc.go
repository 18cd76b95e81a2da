// Package config loads and validates the worker's YAML configuration: the
// robots (name, platform, webhook, secret, keywords, rate override), the
// per-platform limits and the worker's retry settings.
//
// ${NAME} in the file is replaced by the environment variable NAME before
// parsing (whole-line comments excepted); an unset variable is an error. A robot's secret comes from exactly
// one of secret, secret_env or secret_file. Every problem is reported, each
// with its place in the file (robots[2] "ops": webhook: ...), and no error
// ever contains a secret or a webhook token; [Problems] lists them one by
// one.
//
// For a worker that reloads its file while running, a [Watcher] reports
// each new content of the file (edits, renames over it, Kubernetes ConfigMap
// symlink swaps; on demand with [Watcher.Trigger]) and [Compare] tells what
// changed from the configuration running: robots added, changed and
// removed, and the settings that need a restart.
package config
