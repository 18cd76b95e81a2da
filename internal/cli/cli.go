package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// UsageError is a mistake on the command line: exit status 2. Return it as
// a value (not a pointer); it may be wrapped.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Usagef returns a [UsageError] whose error is fmt.Errorf(format, a...),
// so %w wraps as usual.
func Usagef(format string, a ...any) error { return UsageError{fmt.Errorf(format, a...)} }

// Parse parses args with fs (made with [flag.ContinueOnError]). It
// returns [flag.ErrHelp] as it is, for -h and --help, and any other error
// as a [UsageError].
func Parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return UsageError{err}
}

// ExitCode maps a command's error to its exit status: 0 for nil and
// [flag.ErrHelp] (-h, --help), 2 for an error that is or wraps a
// [UsageError], 1 for anything else.
func ExitCode(err error) int {
	var ue UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	default:
		return 1
	}
}

// RunFunc is a command: it parses args (without the program name), writes
// its results to stdout and its log and diagnostics to stderr, and returns
// when it is done or ctx is cancelled.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Command is a program for [Main].
type Command struct {
	// Name prefixes the error Main prints: "gateway: listen: ...".
	Name string
	// Run is the command.
	Run RunFunc
	// UsageHint, when set, is printed on a line of its own after the
	// message of a usage error, e.g. "Run 'producer help' for usage.".
	UsageHint string
	// HelpStatus is the exit status when Run returns [flag.ErrHelp].
	HelpStatus int
}

// Main runs c with the process's arguments, standard output and standard
// error, and a context cancelled by SIGINT or SIGTERM; it prints Run's
// error (if any, and not -h) to standard error and exits with
// [ExitCode], or [Command.HelpStatus] after -h. It never returns.
func Main(c Command) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := c.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(c.report(os.Stderr, err))
}

// report writes err to w as Main does and returns the exit status.
func (c Command) report(w io.Writer, err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp): // the flag package printed the usage
		return c.HelpStatus
	}
	fmt.Fprintf(w, "%s: %v\n", c.Name, err)
	code := ExitCode(err)
	if code == 2 && c.UsageHint != "" {
		fmt.Fprintln(w, c.UsageHint)
	}
	return code
}
