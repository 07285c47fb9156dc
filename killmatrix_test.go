package procxy_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/procxy/procxy/internal/testproc"

	"github.com/procxy/procxy"
)

const envKillParent = "PROCXY_TEST_KILL_PARENT" // how the parent ends: kill, term, panic, exit

// runKillMatrixParent is a parent process for TestKillMatrix: it starts 4
// children, prints their pids, then ends the way it was told to.
func runKillMatrixParent() bool {
	how := os.Getenv(envKillParent)
	if how == "" {
		return false
	}
	ctx := context.Background()
	var pids []string
	for range 4 {
		p, err := procxy.New[Calculator](ctx)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		pids = append(pids, strconv.Itoa(p.Process().Pid))
	}
	fmt.Println("pids", strings.Join(pids, " "))
	switch how {
	case "panic":
		panic("parent panics with 4 children")
	case "exit":
		os.Exit(3)
	}
	time.Sleep(time.Hour) // wait for SIGKILL or SIGTERM
	return true
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if state, ok := strings.CutPrefix(line, "State:"); ok {
			return !strings.HasPrefix(strings.TrimSpace(state), "Z")
		}
	}
	return false
}

// TestKillMatrix: a parent holding 4 children is ended by SIGKILL, SIGTERM,
// a panic and os.Exit, 20 times each; 1 s later no child survives.
func TestKillMatrix(t *testing.T) {
	const rounds = 20
	for _, how := range []string{"kill", "term", "panic", "exit"} {
		t.Run(how, func(t *testing.T) {
			var wg sync.WaitGroup
			sem := make(chan struct{}, 4) // a few parents at a time on 2 cores
			var mu sync.Mutex
			var survivors []int
			for round := range rounds {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					pids, err := killParent(how)
					if err != nil {
						t.Errorf("round %d: %v", round, err)
						return
					}
					time.Sleep(time.Second) // the spec's "1 s later"
					for _, pid := range pids {
						if alive(pid) {
							mu.Lock()
							survivors = append(survivors, pid)
							mu.Unlock()
							testproc.Kill(pid)
						}
					}
				})
			}
			wg.Wait()
			if len(survivors) > 0 {
				t.Errorf("%d children outlived their parent (%s): %v", len(survivors), how, survivors)
			}
		})
	}
}

// killParent starts a parent with 4 children, ends it, and returns the
// children's pids once the parent is gone.
func killParent(how string) ([]int, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envKillParent+"="+how)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "pids ") {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("parent said %q: %v", line, err)
	}
	var pids []int
	for _, f := range strings.Fields(line)[1:] {
		pid, _ := strconv.Atoi(f)
		pids = append(pids, pid)
	}
	switch how {
	case "kill":
		cmd.Process.Signal(syscall.SIGKILL)
	case "term":
		cmd.Process.Signal(syscall.SIGTERM)
	}
	cmd.Wait()
	return pids, nil
}
