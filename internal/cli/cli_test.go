package cli_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/procxy/procxy/internal/cli"
	"github.com/procxy/procxy/internal/gen"
)

func TestUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string // substrings the outputs must have
		stderr     string
		errMessage string
	}{
		{"no-command", nil, 2, "", "Commands:", "no command given"},
		{"unknown", []string{"launch"}, 2, "", "procxy <command>", `unknown command "launch"`},
		{"help", []string{"help"}, 0, "gen     write typed stubs", "", ""},
		{"help-gen", []string{"help", "gen"}, 0, "usage: procxy gen -type T", "", ""},
		{"help-unknown", []string{"help", "launch"}, 2, "", "usage: procxy help", `unknown command "launch"`},
		{"gen-h", []string{"gen", "-h"}, 0, "-type T", "", ""},
		{"gen-no-type", []string{"gen"}, 2, "", "usage: procxy gen", "gen: -type is required"},
		{"gen-bad-flag", []string{"gen", "-x"}, 2, "", "-o file", "gen: flag provided but not defined: -x"},
		{"gen-two-dirs", []string{"gen", "-type", "T", "a", "b"}, 2, "", "usage: procxy gen", "one package directory at most"},
		{"gen-no-package", []string{"gen", "-type", "T", "testdata/none"}, 1, "", "", "gen: read package in testdata/none"},
		{"demo-args", []string{"demo", "now"}, 2, "", "usage: procxy demo", "demo takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := cli.Run(t.Context(), tt.args, &stdout, &stderr)
			if got := cli.ExitCode(err); got != tt.code {
				t.Errorf("exit code %d, want %d (err %v)", got, tt.code, err)
			}
			if tt.errMessage != "" && (err == nil || !strings.Contains(err.Error(), tt.errMessage)) {
				t.Errorf("error %v, want it to contain %q", err, tt.errMessage)
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout %q, want it to contain %q", stdout.String(), tt.stdout)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tt.stderr)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	if got := cli.ExitCode(nil); got != 0 {
		t.Errorf("ExitCode(nil) = %d, want 0", got)
	}
	if got := cli.ExitCode(errors.New("boom")); got != 1 {
		t.Errorf("ExitCode(error) = %d, want 1", got)
	}
}

const calcSource = `package calc

import "context"

type Calc struct{}

func (*Calc) Add(a, b int) int { return a + b }

func (*Calc) Wait(ctx context.Context) error { return nil }
`

func TestGen(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "calc.go"), []byte(calcSource), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := cli.Run(t.Context(), []string{"gen", "-type", "Calc", dir}, &stdout, &stderr); err != nil {
		t.Fatalf("gen: %v\n%s", err, stderr.String())
	}
	out := filepath.Join(dir, "calc_procxy.go")
	src, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		gen.Header,
		"type CalcProxy struct{ *procxy.Proxy[Calc] }",
		"func (p *CalcProxy) Add(ctx context.Context, a int, b int) (int, error) {",
		"func (p *CalcProxy) Wait(ctx context.Context) error {",
	} {
		if !bytes.Contains(src, []byte(want)) {
			t.Errorf("%s lacks %q:\n%s", out, want, src)
		}
	}
	if stdout.Len() > 0 || stderr.Len() > 0 {
		t.Errorf("gen printed %q and %q; want nothing", stdout.String(), stderr.String())
	}

	// Previous output is not part of the input, even when it is stale and
	// the new output goes elsewhere.
	stale := strings.Replace(string(src), "return procxy.Call[int]", "return undefined[int]", 1)
	if err := os.WriteFile(out, []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if err := cli.Run(t.Context(), []string{"gen", "-type", "Calc", "-o", "-", dir}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stdout.Bytes(), src) {
		t.Errorf("gen -o - printed\n%s\nwant\n%s", stdout.Bytes(), src)
	}
}
