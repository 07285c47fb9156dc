// Package quickstart checks that the README's quickstart runs as written.
package quickstart

import (
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEQuickstart copies the Go block under "## Quickstart" in README.md
// into a fresh module that uses this repository, checks that it is
// gofmt-formatted, runs it and checks that it prints 5.
func TestREADMEQuickstart(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## Quickstart\n")
	_, rest, ok2 := strings.Cut(rest, "```go\n")
	code, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README.md has no Go block under ## Quickstart")
	}
	if f, err := format.Source([]byte(code)); err != nil || string(f) != code {
		t.Errorf("the quickstart is not gofmt-formatted (%v); gofmt writes:\n%s", err, f)
	}
	root, _ := filepath.Abs("../..")
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("main.go", code)
	write("go.mod", "module quickstart\n\ngo 1.26\n\nrequire github.com/procxy/procxy v0.0.0\n\nreplace github.com/procxy/procxy => "+root+"\n")
	sum, _ := os.ReadFile(filepath.Join(root, "go.sum"))
	write("go.sum", string(sum))
	cmd := exec.Command("go", "run", "-mod=mod", ".")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "5" {
		t.Fatalf("go run of the quickstart: %v\n%s", err, out)
	}
}
