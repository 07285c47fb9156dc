package cli_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/procxy/procxy/cmd/procxy/internal/cli"
)

// TestDemo runs the tour. Its children are this test binary, re-run (see
// TestMain), and it must end with every child gone.
func TestDemo(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := cli.Run(t.Context(), []string{"demo"}, nil, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	for _, want := range []string{
		"procxy.New[Worker](ctx) started child pid ",
		`procxy.Call[int](ctx, w, "Add", 2, 3) = 5 in `,
		"8 calls of Sleep(200ms) at once took ",
		"errors.Is(err, context.DeadlineExceeded) = true\n",
		"and the abort cancelled Sleep's ctx in the child\n",
		"step 1 of 4\n",
		"step 4 of 4\n",
		`and Build returned "built in 4 steps"`,
		`yielded 2 3 5 7 11 13 17 19 23 29 in `,
		`a *procxy.RemoteError with Code "E_DIV_ZERO"; errors.Is(err, ErrDivZero) = true`,
		`Panic("boom") failed: procxy: Worker.Panic: panic: boom`,
		"internal/cli.(*Worker).Panic(",
		"worker.go:",
		"the child recovered and goes on: Add(1, 1) = 2",
		"exited with status 3; last stderr: worker: simulated fatal error",
		"ExitCode = 3; a pending Sleep(10s) failed with it too (true), and so does c.Err() (true)",
		"calls now fail with procxy: proxy closed",
		"no child left: pids ",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(stderr.String(), "DATA RACE") {
		t.Errorf("a child reported a data race")
	}
}
