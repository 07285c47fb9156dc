// Package testproc starts the running test binary again as another
// process, for tests that need real processes (workers, servers).
package testproc

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Start runs the test binary again with -test.run=^$ and env added to
// the environment; its TestMain tells by env what to be. The process's
// stdin is a pipe that closes when the test ends, which is the process's
// signal to exit, and Cleanup waits for it; its stderr goes to this
// process's stderr, each line prefixed with its pid.
func Start(t testing.TB, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintf(os.Stderr, "process %d: %s\n", cmd.Process.Pid, sc.Text())
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		<-logged
		cmd.Wait()
	})
	return cmd
}

// Kill sends SIGKILL (on Windows, TerminateProcess) to process pid.
func Kill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}
