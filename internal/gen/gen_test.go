package gen_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/procxy/procxy/internal/gen"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the generator's output")

var typeRE = regexp.MustCompile(`(?m)^//go:generate procxy gen -type (\w+)`)

// TestGolden generates stubs for each testdata/*.go, whose //go:generate
// line names the type, compares them with testdata/*.golden, and checks
// that they compile together with their input.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.go")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs in testdata: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".go")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			m := typeRE.FindSubmatch(src)
			if m == nil {
				t.Fatalf("%s has no //go:generate procxy gen -type line", in)
			}
			got, err := gen.Generate(t.Context(), gen.Config{Files: []string{in}, Type: string(m[1])})
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(in, ".go") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, diff(want, got))
			}

			stubs := filepath.Join(t.TempDir(), name+"_procxy.go")
			if err := os.WriteFile(stubs, got, 0o644); err != nil {
				t.Fatal(err)
			}
			errs, err := gen.TypeErrors(t.Context(), in, stubs)
			if err != nil {
				t.Fatal(err)
			}
			for _, err := range errs {
				t.Errorf("generated code does not compile: %v", err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		typ  string
		want string
	}{
		{"", "no type given"},
		{"Nope", "no type Nope in package bad"},
		{"Shape", "Shape is an interface"},
		{"Box", "Box is generic"},
		{"Alias", "Alias is an alias"},
		{"Taken", "TakenProxy is already declared at testdata/bad/bad.go:15:6"},
		{"Broken", "undefined: Missing"},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			_, err := gen.Generate(t.Context(), gen.Config{Dir: "testdata/bad", Type: tt.typ})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Generate(%q) = %v; want an error containing %q", tt.typ, err, tt.want)
			}
		})
	}
}

func TestDefaultOutput(t *testing.T) {
	tests := []struct{ dir, typ, want string }{
		{"", "Calculator", "calculator_procxy.go"},
		{".", "HTTPServer", "httpserver_procxy.go"},
		{"pkg/x", "T", filepath.Join("pkg", "x", "t_procxy.go")},
	}
	for _, tt := range tests {
		if got := gen.DefaultOutput(tt.dir, tt.typ); got != tt.want {
			t.Errorf("DefaultOutput(%q, %q) = %q, want %q", tt.dir, tt.typ, got, tt.want)
		}
	}
}

// diff shows the first lines where got departs from want.
func diff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	i := 0
	for i < len(wl) && i < len(gl) && wl[i] == gl[i] {
		i++
	}
	b := fmt.Sprintf("at line %d:\n", i+1)
	for j := i; j < i+5 && j < len(wl); j++ {
		b += "-" + wl[j] + "\n"
	}
	for j := i; j < i+5 && j < len(gl); j++ {
		b += "+" + gl[j] + "\n"
	}
	return b
}
