//go:build unix && !linux

package childproc

import (
	"errors"
	"fmt"
	"syscall"
)

func setPdeathsig(_ *syscall.SysProcAttr, sig syscall.Signal) error {
	if sig != 0 {
		return fmt.Errorf("childproc: Pdeathsig: %w", errors.ErrUnsupported)
	}
	return nil
}
