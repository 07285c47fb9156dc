package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	switch {
	case len(os.Args) > 2 && os.Args[1] == "worker": // the demo's workers are this binary
		main()
		return
	case os.Getenv("FLEET_DEMO") != "": // TestDemo's process
		os.Args = []string{os.Args[0], "demo"}
		main()
		return
	}
	os.Exit(m.Run())
}

// TestDemo runs the README's demo: three workers, a worker killed with
// SIGKILL halfway, and every one of the 30 calls answered.
func TestDemo(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), os.Args[0])
	cmd.Env = append(os.Environ(), "FLEET_DEMO=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	text := string(out)
	if !strings.Contains(text, "--- killing worker") || strings.Contains(text, "failed") {
		t.Errorf("demo output:\n%s", text)
	}
	if n := strings.Count(text, "at 320px by worker"); n != 30 {
		t.Errorf("%d of 30 calls answered:\n%s", n, text)
	}
}
