package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEnvOr(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want string
	}{
		{name: "unset", want: DefaultNATSURL},
		{name: "empty", vars: map[string]string{EnvNATSURL: ""}, want: DefaultNATSURL},
		{name: "set", vars: map[string]string{EnvNATSURL: "nats://nats:4222"}, want: "nats://nats:4222"},
		{name: "another variable", vars: map[string]string{EnvPrefix: "staging"}, want: DefaultNATSURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) {
				v, ok := tt.vars[k]
				return v, ok
			}
			require.Equal(t, tt.want, EnvOr(lookup, EnvNATSURL, DefaultNATSURL))
		})
	}
}

func TestLogFlags(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantLevel  slog.Level
		wantFormat string
		wantErr    string // of parsing, or of CheckLogFormat
	}{
		{name: "defaults", wantLevel: slog.LevelInfo, wantFormat: "text"},
		{name: "debug json", args: []string{"--log-level", "debug", "--log-format", "json"}, wantLevel: slog.LevelDebug, wantFormat: "json"},
		{name: "warn", args: []string{"--log-level", "WARN"}, wantLevel: slog.LevelWarn, wantFormat: "text"},
		{name: "bad level", args: []string{"--log-level", "loud"}, wantErr: "log-level"},
		{name: "bad format", args: []string{"--log-format", "xml"}, wantErr: `--log-format must be text or json, not "xml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var level slog.Level
			var format string
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			AddLogFlags(fs, &level, &format)
			err := fs.Parse(tt.args)
			if err == nil {
				err = CheckLogFormat(format)
			}
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantLevel, level)
			require.Equal(t, tt.wantFormat, format)
		})
	}
}

func TestNewLogger(t *testing.T) {
	t.Run("json", func(t *testing.T) {
		var w bytes.Buffer
		log, err := NewLogger(&w, slog.LevelWarn, "json")
		require.NoError(t, err)
		log.Info("hidden")
		log.Warn("shown", "robot", "ops")
		var rec map[string]any
		require.NoError(t, json.Unmarshal(w.Bytes(), &rec), "one JSON record: %s", w.String())
		require.Equal(t, "shown", rec["msg"])
		require.Equal(t, "WARN", rec["level"])
		require.Equal(t, "ops", rec["robot"])
	})
	t.Run("text", func(t *testing.T) {
		var w bytes.Buffer
		log, err := NewLogger(&w, slog.LevelDebug, "text")
		require.NoError(t, err)
		log.Debug("shown", "robot", "ops")
		require.Contains(t, w.String(), "level=DEBUG msg=shown robot=ops")
	})
	t.Run("unknown format", func(t *testing.T) {
		log, err := NewLogger(io.Discard, slog.LevelInfo, "xml")
		require.Nil(t, log)
		require.Equal(t, 2, ExitCode(err))
		require.ErrorContains(t, err, "--log-format")
	})
}
