//go:build !linux

package childproc

import (
	"errors"
	"fmt"
	"os"
)

// checkIsolation refuses the options only Linux implements.
func checkIsolation(r *resolved) error {
	switch {
	case r.Limits != (Limits{}):
		return fmt.Errorf("childproc: Limits need Linux (have the child call syscall.Setrlimit before it serves, or start it through a shell's ulimit): %w", errors.ErrUnsupported)
	case r.NoNewPrivs:
		return fmt.Errorf("childproc: NoNewPrivs needs Linux (on macOS, run the child under sandbox-exec; on Windows, with a restricted token): %w", errors.ErrUnsupported)
	}
	return nil
}

func startProcess(path string, argv []string, attr *os.ProcAttr, _ *resolved) (*os.Process, func(), error) {
	p, err := os.StartProcess(path, argv, attr)
	return p, nil, err
}
