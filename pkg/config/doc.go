// Package config loads and validates the worker's YAML configuration: the
// robots (name, platform, webhook, secret, keywords, rate override), the
// per-platform limits and the worker's retry settings.
//
// ${NAME} in the file is replaced by the environment variable NAME before
// parsing (whole-line comments excepted); an unset variable is an error. A robot's secret comes from exactly
// one of secret, secret_env or secret_file. Every problem is reported, each
// with its place in the file (robots[2] "ops": webhook: ...), and no error
// ever contains a secret or a webhook token.
package config
