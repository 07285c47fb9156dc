package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// UsageError reports a command line that procxy does not understand. Run
// has already shown the relevant usage on stderr when it returns one.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ExitCode is the process exit status for an error returned by Run: 0 for
// nil, 2 for a *UsageError, 1 otherwise.
func ExitCode(err error) int {
	var ue *UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// command is a subcommand.
type command struct {
	name    string
	summary string
	usage   string // synopsis and description, without the flags
	// setup defines the command's flags on fs and returns the function that
	// runs the command once they are parsed.
	setup func(fs *flag.FlagSet) runFunc
}

type runFunc func(ctx context.Context, fs *flag.FlagSet, stdout, stderr io.Writer) error

func commands() []*command { return []*command{genCommand(), demoCommand(), helpCommand()} }

const mainUsage = `procxy runs Go values in child processes.

Usage:

	procxy <command> [arguments]

Commands:

%s
Run "procxy help <command>" for more about a command.
`

// Run runs the procxy command with args (without the program name),
// writing its output to stdout and diagnostics to stderr. ctx cancels a
// running command. It returns a *UsageError for a bad command line.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printUsage(stderr)
		return usageErrorf("no command given")
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	printUsage(stderr)
	return usageErrorf("unknown command %q", args[0])
}

func printUsage(w io.Writer) {
	var list strings.Builder
	for _, c := range commands() {
		fmt.Fprintf(&list, "\t%-6s  %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, mainUsage, list.String())
}

// run parses the subcommand's flags and runs it. -h and -help print its
// usage and succeed; a bad flag prints its usage and is a usage error.
func (c *command) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; usage is printed below
	do := c.setup(fs)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		c.printUsage(stdout, fs)
		return nil
	} else if err != nil {
		c.printUsage(stderr, fs)
		return &UsageError{Err: fmt.Errorf("%s: %w", c.name, err)}
	}
	err := do(ctx, fs, stdout, stderr)
	var ue *UsageError
	if errors.As(err, &ue) {
		c.printUsage(stderr, fs)
	}
	return err
}

func (c *command) printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, c.usage)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprint(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

func helpCommand() *command {
	return &command{
		name:    "help",
		summary: "show help for a command",
		usage: `usage: procxy help [command]

Help shows what a command does and its flags.
`,
		setup: func(*flag.FlagSet) runFunc { return runHelp },
	}
}

func runHelp(_ context.Context, fs *flag.FlagSet, stdout, _ io.Writer) error {
	switch fs.NArg() {
	case 0:
		printUsage(stdout)
		return nil
	case 1:
	default:
		return usageErrorf("help takes at most one command")
	}
	for _, c := range commands() {
		if c.name == fs.Arg(0) {
			cfs := flag.NewFlagSet(c.name, flag.ContinueOnError)
			c.setup(cfs)
			c.printUsage(stdout, cfs)
			return nil
		}
	}
	return usageErrorf("unknown command %q", fs.Arg(0))
}
