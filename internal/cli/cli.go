package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/term"
)

// command is a subcommand.
type command struct {
	name    string
	summary string
	usage   string // synopsis and description, without the flags
	// worker marks a command that starts a Procwire worker from the
	// command line given after "--".
	worker bool
	// setup defines the command's flags on fs and returns the function that
	// runs the command once they are parsed.
	setup func(fs *flag.FlagSet) runFunc
}

type runFunc func(ctx context.Context, inv *invocation) error

// invocation is one run of a command: its arguments and its streams.
type invocation struct {
	name   string   // the command's name
	args   []string // positional arguments, flags taken out
	argv   []string // a worker command: the arguments after "--"
	stdin  io.Reader
	stdout *output
	stderr *output
}

// output is one of the command's output streams. Its writes are
// serialized: a worker's lines, its events and the command's own output
// come from different goroutines.
type output struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool // w is a terminal
}

func newOutput(w io.Writer) *output {
	f, ok := w.(*os.File)
	return &output{w: w, terminal: ok && term.IsTerminal(int(f.Fd()))}
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.Write(p)
}

func commands() []*command {
	return []*command{
		listCommand(), describeCommand(), callCommand(), streamCommand(), benchCommand(),
		genCommand(), demoCommand(), versionCommand(), helpCommand(),
	}
}

const mainUsage = `procxy runs code in other processes and talks to it as if it were local.
This command calls and measures Procwire workers (Go, Node.js, anything that
speaks Procwire v2) and writes typed stubs for procxy's object proxy.

Usage:

	procxy <command> [flags] [arguments] [-- WORKER COMMAND...]

Commands:

%s
Run "procxy help <command>" or "procxy <command> -h" for more about a command.

Exit status: 0 success; 1 the command failed; 2 a usage error (bad flags or
arguments, an unknown method, input that does not fit the method's codec);
3 the worker's method returned an error; 4 the worker could not be started,
is not a Procwire worker, or died; 5 a call ran out of time; 130 interrupted
(Ctrl-C).
`

// Run runs the procxy command with args (without the program name),
// reading input from stdin, writing its output to stdout and diagnostics
// to stderr. ctx cancels a running command: a call in flight is aborted,
// the worker is stopped and Run returns an error for which ExitCode gives
// 130. A bad command line returns a *UsageError.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := run(ctx, args, stdin, newOutput(stdout), newOutput(stderr))
	if err != nil && ctx.Err() != nil && !errors.As(err, new(*UsageError)) {
		return &interruptedError{err: err}
	}
	return err
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr *output) error {
	if len(args) == 0 {
		printUsage(stderr)
		return usageErrorf("no command given")
	}
	switch args[0] {
	case "-h", "-help", "--help":
		printUsage(stdout)
		return nil
	case "-version", "--version":
		return runVersion(ctx, &invocation{name: "version", stdout: stdout, stderr: stderr}, false)
	}
	if strings.HasPrefix(args[0], "-") {
		return usageErrorf("unknown flag %s: flags go after the command (run \"procxy help\")", args[0])
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdin, stdout, stderr)
		}
	}
	return usageErrorf("unknown command %q%s (run \"procxy help\" for the list)", args[0], didYouMean(args[0], commandNames()))
}

func commandNames() []string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return names
}

func printUsage(w io.Writer) {
	var list strings.Builder
	for _, c := range commands() {
		fmt.Fprintf(&list, "\t%-9s  %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, mainUsage, list.String())
}

// run parses the subcommand's flags and runs it. -h, -help and --help
// print its usage on stdout and succeed; a bad flag is a usage error.
// Flags may come before, between and after the positional arguments;
// everything after the first "--" is the worker command (or, for a
// command that starts no worker, more positional arguments).
func (c *command) run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr *output) error {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; usage is printed below
	fs.Usage = func() {}
	do := c.setup(fs)
	inv := &invocation{name: c.name, stdin: stdin, stdout: stdout, stderr: stderr}
	var rest []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, rest = args[:i], args[i+1:]
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.printUsage(stdout, fs)
		return nil
	} else if err != nil {
		return usageErrorf("%s: %v", c.name, err)
	}
	inv.args = pos
	if c.worker {
		if len(rest) == 0 {
			return usageErrorf("%s: no worker command: give it after --, as in procxy %s ... -- ./worker", c.name, c.name)
		}
		inv.argv = rest
	} else {
		inv.args = append(inv.args, rest...)
	}
	return do(ctx, inv)
}

// parseInterspersed parses the flags in args wherever they are and
// returns the other arguments in order. A negative number ("-1", "-2.5")
// is an argument, not a flag, so that it can be a JSON value.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		for len(args) > 0 && !isFlag(args[0]) {
			pos, args = append(pos, args[0]), args[1:]
		}
		if len(args) == 0 {
			return pos, nil
		}
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
	}
}

func isFlag(s string) bool {
	if len(s) < 2 || s[0] != '-' {
		return false
	}
	c := s[1]
	if c == '-' && len(s) > 2 {
		c = s[2]
	}
	return c != '.' && (c < '0' || c > '9')
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

func runHelp(_ context.Context, inv *invocation) error {
	switch len(inv.args) {
	case 0:
		printUsage(inv.stdout)
		return nil
	case 1:
	default:
		return usageErrorf("help takes at most one command")
	}
	for _, c := range commands() {
		if c.name == inv.args[0] {
			cfs := flag.NewFlagSet(c.name, flag.ContinueOnError)
			c.setup(cfs)
			c.printUsage(inv.stdout, cfs)
			return nil
		}
	}
	return usageErrorf("help: unknown command %q%s", inv.args[0], didYouMean(inv.args[0], commandNames()))
}

// didYouMean returns ` (did you mean "x"?)` for the candidate closest to
// name, when one is close enough, or "".
func didYouMean(name string, candidates []string) string {
	best, bestD := "", max(1, len(name)/3)+1
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(name), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the optimal string alignment distance between a and b,
// in bytes: insertions, deletions, substitutions and transpositions of
// neighbours count one each.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
