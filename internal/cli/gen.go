package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/procxy/procxy/internal/gen"
)

func genCommand() *command {
	return &command{
		name:    "gen",
		summary: "write typed stubs for a type (for go:generate)",
		usage: `usage: procxy gen -type T [-o file] [dir]

Gen writes typed stubs for the type T of the Go package in dir (default ".")
into that package: a TProxy type, whose methods call T's methods in a child
process and are checked by the compiler, and NewTProxy, which starts the
child. Each stub takes a context.Context first and returns an error last;
streams become iter.Seq2[V, error]. Methods that cannot be called remotely
are left out, with a comment saying why. Use it from go:generate:

	//go:generate go run github.com/procxy/procxy/cmd/procxy gen -type T
`,
		setup: func(fs *flag.FlagSet) runFunc {
			typ := fs.String("type", "", "name of the type `T` to write stubs for (required)")
			out := fs.String("o", "", "output `file`; \"-\" is standard output (default dir/t_procxy.go, lower-case)")
			return func(ctx context.Context, inv *invocation) error {
				return runGen(ctx, inv.args, *typ, *out, inv.stdout)
			}
		},
	}
}

func runGen(ctx context.Context, args []string, typ, out string, stdout io.Writer) error {
	if typ == "" {
		return usageErrorf("gen: -type is required")
	}
	dir := "."
	switch len(args) {
	case 0:
	case 1:
		dir = args[0]
	default:
		return usageErrorf("gen: one package directory at most, got %q", args)
	}
	if out == "" {
		out = gen.DefaultOutput(dir, typ)
	}
	c := gen.Config{Type: typ, Dir: dir}
	if out != "-" {
		c.Output = out
	}
	src, err := gen.Generate(ctx, c)
	if err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	if out == "-" {
		_, err := stdout.Write(src)
		return err
	}
	if old, err := os.ReadFile(out); err == nil && bytes.Equal(old, src) {
		return nil // unchanged: keep the file's modification time
	}
	return os.WriteFile(out, src, 0o666)
}
