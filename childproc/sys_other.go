//go:build !unix

package childproc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

func sysProcAttr(r *resolved) (*syscall.SysProcAttr, error) {
	if err := checkIsolation(r); err != nil {
		return nil, err
	}
	switch {
	case r.Detached, r.ProcessGroup:
		return nil, fmt.Errorf("childproc: Detached/ProcessGroup: %w", errors.ErrUnsupported)
	case r.Credential != nil:
		return nil, fmt.Errorf("childproc: Credential: %w", errors.ErrUnsupported)
	case r.Pdeathsig != 0:
		return nil, fmt.Errorf("childproc: Pdeathsig: %w", errors.ErrUnsupported)
	}
	return nil, nil
}

func exitStatus(ps *os.ProcessState) (int, syscall.Signal) { return ps.ExitCode(), 0 }

func killGroup(int, syscall.Signal) error {
	return fmt.Errorf("childproc: process groups: %w", errors.ErrUnsupported)
}

func errnoName(e syscall.Errno) string { return "errno " + strconv.Itoa(int(e)) }

func signalName(s syscall.Signal) string { return s.String() }

func checkExecutable(path string) error {
	_, err := exec.LookPath(path)
	return err
}

func socketpair() (net.Conn, *os.File, error) {
	return nil, nil, fmt.Errorf("childproc: IPC channel: %w", errors.ErrUnsupported)
}

func inheritedConn(int) (net.Conn, error) {
	return nil, fmt.Errorf("childproc: IPC channel: %w", errors.ErrUnsupported)
}

func markCloseOnExec(int) {}

const ipcSupported = false
