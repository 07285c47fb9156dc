package host_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/procxy/procxy/host"
)

// Parent modes of the test binary (envParent): it spawns a worker and
// reports its pid on stdout, then waits to be killed.
const (
	parentPdeathsig = "pdeathsig" // the normal module: Pdeathsig and stdin
	parentEOF       = "eof"       // without Pdeathsig: only the stdin EOF
)

// envWorker passes the worker's path and first argument to a parent.
const (
	envWorkerPath = "HOST_TEST_WORKER_PATH"
	envWorkerArg  = "HOST_TEST_WORKER_ARG"
)

func parentMain(mode string) int {
	cfg := host.Config{
		Name:       "orphan",
		Executable: os.Getenv(envWorkerPath),
		Methods:    interopMethods(),
		Events:     interopEvents(),
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	if a := os.Getenv(envWorkerArg); a != "" {
		cfg.Args = []string{a}
	}
	m, err := host.NewModule(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if mode == parentEOF {
		host.NoPdeathsig(m)
	}
	if err := m.Spawn(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("pid %d\n", m.PID())
	io.Copy(io.Discard, os.Stdin) // until the test kills us
	m.Shutdown(context.Background())
	return 0
}
