package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain runs main itself when asked to, so that TestCommand can run the
// real command, exit status and all, by re-running this test binary.
func TestMain(m *testing.M) {
	if os.Getenv("PROCXY_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Setenv("GORACE", "atexit_sleep_ms=0") // race-built children exit without a pause
	os.Exit(m.Run())
}

func TestCommand(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"help"}, 0, "procxy <command> [arguments]", ""},
		{[]string{"launch"}, 2, "", "procxy: unknown command \"launch\"\n"},
		{[]string{"gen", "-type", "Nope"}, 1, "", "procxy: gen: no type Nope in package main\n"},
		{[]string{"demo"}, 0, "no child left", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], tt.args...)
			cmd.Env = append(os.Environ(), "PROCXY_TEST_MAIN=1")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(stdout.String(), tt.stdout) || !strings.HasSuffix(stderr.String(), tt.stderr) {
				t.Errorf("procxy %s: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr ending in %q",
					strings.Join(tt.args, " "), code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}
