package cli

import (
	"flag"
	"io"
	"log/slog"
)

// AddLogFlags defines --log-level (debug, info, warn or error; default
// info) and --log-format (text or json; default text) on fs, stored in
// level and format. Check the format with [CheckLogFormat] after parsing.
func AddLogFlags(fs *flag.FlagSet, level *slog.Level, format *string) {
	fs.TextVar(level, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	fs.StringVar(format, "log-format", "text", "log format: text or json")
}

// CheckLogFormat returns a [UsageError] unless format is "text" or "json".
func CheckLogFormat(format string) error {
	if format != "text" && format != "json" {
		return Usagef("--log-format must be text or json, not %q", format)
	}
	return nil
}

// NewLogger returns a logger writing records of level and above to w, as
// text or as JSON lines; another format is the error of [CheckLogFormat].
func NewLogger(w io.Writer, level slog.Level, format string) (*slog.Logger, error) {
	if err := CheckLogFormat(format); err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
