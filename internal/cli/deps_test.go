package cli_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// coreDeps are the only modules outside the standard library that the
// library packages may share with the CLI (ipc limits rates with x/time).
var coreDeps = []string{
	"github.com/vmihailenco/msgpack/v5",
	"github.com/vmihailenco/tagparser/v2",
	"golang.org/x/sys",
	"golang.org/x/time",
}

// notLibrary are the module's packages that are not the library: the
// command and what only it uses, examples and interop helpers.
var notLibrary = []string{"/cmd/", "/internal/cli", "/internal/gen", "/examples/", "/interop/"}

// TestLibraryDeps keeps the CLI's heavy dependencies (plotting, progress
// bar, terminal and what they pull in) out of the library:
// no package that a procxy user imports — procxy, rpc/..., host, worker,
// transport/..., childproc and the rest — may depend on a module the CLI
// brings, except coreDeps.
func TestLibraryDeps(t *testing.T) {
	const mod = "github.com/procxy/procxy"
	goList := func(args ...string) []string {
		t.Helper()
		cmd := exec.Command("go", append([]string{"list"}, args...)...)
		cmd.Dir = "../.."
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
		}
		return strings.Fields(string(out))
	}
	var lib []string
	for _, p := range goList("./...") {
		if !slices.ContainsFunc(notLibrary, func(s string) bool { return strings.Contains(p+"/", s) }) {
			lib = append(lib, p)
		}
	}
	for _, want := range []string{mod, mod + "/rpc", mod + "/rpc/wire", mod + "/rpc/codec", mod + "/host", mod + "/worker", mod + "/transport", mod + "/childproc", mod + "/ipc"} {
		if !slices.Contains(lib, want) {
			t.Fatalf("library packages %v lack %s", lib, want)
		}
	}

	const modules = `-f={{if not .Standard}}{{with .Module}}{{.Path}}{{end}}{{end}}`
	heavy := map[string]bool{}
	for _, m := range goList("-deps", modules, "./internal/cli") {
		if m != mod && !slices.Contains(coreDeps, m) {
			heavy[m] = true
		}
	}
	for _, m := range []string{"gonum.org/v1/plot", "github.com/schollz/progressbar/v3", "golang.org/x/term"} {
		if !heavy[m] {
			t.Errorf("the CLI no longer depends on %s: update this test", m)
		}
	}

	fields := goList(append([]string{"-deps", "-f={{if not .Standard}}{{.ImportPath}} {{with .Module}}{{.Path}}{{end}}{{end}}"}, lib...)...)
	var bad []string
	for i := 0; i+1 < len(fields); i += 2 {
		if heavy[fields[i+1]] {
			bad = append(bad, fields[i])
		}
	}
	for _, p := range lib { // name the library packages that bring them in
		for _, d := range goList("-deps", p) {
			if slices.Contains(bad, d) {
				t.Errorf("%s depends on %s, which only the CLI may use: keep it out of the library", p, d)
			}
		}
	}
}
