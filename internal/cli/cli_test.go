package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{name: "success", want: 0},
		{name: "help", err: flag.ErrHelp, want: 0},
		{name: "wrapped help", err: fmt.Errorf("send: %w", flag.ErrHelp), want: 0},
		{name: "usage", err: Usagef("--config is required"), want: 2},
		{name: "usage value", err: UsageError{Err: errors.New("bad")}, want: 2},
		{name: "wrapped usage", err: fmt.Errorf("x: %w", Usagef("bad")), want: 2},
		{name: "failure", err: errors.New("config: invalid"), want: 1},
		{name: "context cancelled", err: context.Canceled, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, ExitCode(tt.err))
		})
	}
}

func TestUsagef(t *testing.T) {
	inner := errors.New("flag provided but not defined: -bogus")
	err := Usagef("send: %w", inner)
	require.EqualError(t, err, "send: flag provided but not defined: -bogus")
	require.ErrorIs(t, err, inner, "%w wraps")
	var ue UsageError
	require.ErrorAs(t, err, &ue)
}

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantErr  error // errors.Is
		wantCode int
	}{
		{name: "ok", args: []string{"--n", "3"}, wantCode: 0},
		{name: "help", args: []string{"-h"}, wantErr: flag.ErrHelp, wantCode: 0},
		{name: "unknown flag", args: []string{"--bogus"}, wantCode: 2},
		{name: "bad value", args: []string{"--n", "many"}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			n := fs.Int("n", 0, "")
			err := Parse(fs, tt.args)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			}
			require.Equal(t, tt.wantCode, ExitCode(err), "err %v", err)
			if err == nil {
				require.Equal(t, 3, *n)
			}
		})
	}
}

func TestReport(t *testing.T) {
	tests := []struct {
		name     string
		cmd      Command
		err      error
		wantCode int
		wantOut  string
	}{
		{name: "success", cmd: Command{Name: "gateway"}, wantCode: 0, wantOut: ""},
		{name: "help", cmd: Command{Name: "gateway"}, err: flag.ErrHelp, wantCode: 0, wantOut: ""},
		{name: "help status", cmd: Command{Name: "demo", HelpStatus: 2}, err: flag.ErrHelp, wantCode: 2, wantOut: ""},
		{name: "failure", cmd: Command{Name: "gateway"}, err: errors.New("listen: in use"), wantCode: 1,
			wantOut: "gateway: listen: in use\n"},
		{name: "usage", cmd: Command{Name: "worker"}, err: Usagef("--config is required"), wantCode: 2,
			wantOut: "worker: --config is required\n"},
		{name: "usage with hint", cmd: Command{Name: "producer", UsageHint: "Run 'producer help' for usage."},
			err: Usagef("no subcommand"), wantCode: 2, wantOut: "producer: no subcommand\nRun 'producer help' for usage.\n"},
		{name: "failure without hint", cmd: Command{Name: "producer", UsageHint: "Run 'producer help' for usage."},
			err: errors.New("boom"), wantCode: 1, wantOut: "producer: boom\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w bytes.Buffer
			require.Equal(t, tt.wantCode, tt.cmd.report(&w, tt.err))
			require.Equal(t, tt.wantOut, w.String())
		})
	}
}

// mainEnv selects, in a child process of TestMain, which command
// runMainChild runs through Main.
const mainEnv = "BOTRELAY_CLI_TEST_MAIN"

func TestMain(m *testing.M) {
	if mode := os.Getenv(mainEnv); mode != "" {
		runMainChild(mode)
	}
	os.Exit(m.Run())
}

// runMainChild runs a command through Main; it never returns.
func runMainChild(mode string) {
	Main(Command{Name: "child", UsageHint: "Run 'child help' for usage.", HelpStatus: 3,
		Run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			switch mode {
			case "signal": // wait for SIGTERM, then stop cleanly
				fmt.Fprintln(stdout, "ready", args)
				<-ctx.Done()
				fmt.Fprintln(stdout, "stopped")
				return nil
			case "usage":
				return Usagef("unexpected arguments %q", args)
			case "help":
				return flag.ErrHelp
			default:
				return fmt.Errorf("failed in mode %s", mode)
			}
		}})
}

func TestMainProcess(t *testing.T) {
	tests := []struct {
		mode       string
		wantCode   int
		wantStderr string
	}{
		{mode: "usage", wantCode: 2, wantStderr: "child: unexpected arguments [\"a\" \"b\"]\nRun 'child help' for usage.\n"},
		{mode: "help", wantCode: 3, wantStderr: ""},
		{mode: "fail", wantCode: 1, wantStderr: "child: failed in mode fail\n"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "a", "b")
			cmd.Env = append(os.Environ(), mainEnv+"="+tt.mode)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee)
			require.Equal(t, tt.wantCode, ee.ExitCode())
			require.Equal(t, tt.wantStderr, stderr.String())
		})
	}
}

// TestMainSignal: SIGTERM cancels the command's context; it returns nil
// and the process exits 0.
func TestMainSignal(t *testing.T) {
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "x")
			cmd.Env = append(os.Environ(), mainEnv+"=signal")
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			buf := make([]byte, len("ready [x]\n"))
			_, err = io.ReadFull(stdout, buf)
			require.NoError(t, err)
			require.Equal(t, "ready [x]\n", string(buf))
			require.NoError(t, cmd.Process.Signal(sig))
			rest, err := io.ReadAll(stdout)
			require.NoError(t, err)
			require.Equal(t, "stopped\n", string(rest))
			require.NoError(t, cmd.Wait(), "exit status 0")
		})
	}
}
