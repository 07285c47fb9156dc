package host_test

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestParentDeath: when the parent dies, however it dies, its worker
// dies too — by the parent-death signal, and, without it, by the EOF on
// its stdin. The parent is this test binary re-run (parentMain), SIGKILLed
// once its Node worker is ready. The orphaned worker is re-parented to
// this process (a subreaper), which waits for it.
func TestParentDeath(t *testing.T) {
	w := nodeWorker(t)
	for _, mode := range []string{parentPdeathsig, parentEOF} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), envParent+"="+mode, envWorkerPath+"="+w.path, envWorkerArg+"="+w.args[0])
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdin, err := cmd.StdinPipe() // kept open: the parent waits on it
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var pid int
			line, err := bufio.NewReader(out).ReadString('\n')
			if _, serr := fmt.Sscanf(strings.TrimSpace(line), "pid %d", &pid); err != nil || serr != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("parent said %q (%v)", line, err)
			}
			cmd.Process.Kill()
			cmd.Wait()
			killed := time.Now()

			// The parent has been reaped, so its orphan is our child now.
			type result struct {
				ws  syscall.WaitStatus
				err error
			}
			exited := make(chan result, 1)
			go func() {
				var r result
				for {
					_, r.err = syscall.Wait4(pid, &r.ws, 0, nil)
					if r.err != syscall.EINTR {
						break
					}
				}
				exited <- r
			}()
			select {
			case r := <-exited:
				if errors.Is(r.err, syscall.ECHILD) {
					// The parent's threads die one by one: the one that
					// started the worker can go first, trigger Pdeathsig,
					// and the dying parent may still reap the worker.
					if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, fs.ErrNotExist) {
						syscall.Kill(pid, syscall.SIGKILL)
						t.Fatalf("worker %d is not our child and still exists after its parent died", pid)
					}
					t.Logf("worker %d was reaped by its dying parent", pid)
					return
				}
				if r.err != nil {
					t.Fatalf("wait for worker %d: %v", pid, r.err)
				}
				ws := r.ws
				t.Logf("worker %d exited %v after its parent was killed (%s)", pid, time.Since(killed), describeStatus(ws))
				if mode == parentPdeathsig && ws.Signal() != syscall.SIGKILL {
					t.Errorf("worker status %s, want killed by SIGKILL (Pdeathsig)", describeStatus(ws))
				}
			case <-time.After(20 * time.Second):
				syscall.Kill(pid, syscall.SIGKILL)
				<-exited
				t.Fatalf("worker %d still alive 20s after its parent died", pid)
			}
		})
	}
}

func describeStatus(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}
