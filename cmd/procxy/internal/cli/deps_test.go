package cli_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// libraryDeps are the only modules outside the standard library that the
// procxy library's packages may depend on: msgpack, x/sys for the
// platform code, x/time for ipc's rate limits and gobreaker for its
// circuit breakers. Adding one is a decision: the core module stays lean.
var libraryDeps = []string{
	"github.com/sony/gobreaker/v2",
	"github.com/vmihailenco/msgpack/v5",
	"github.com/vmihailenco/tagparser/v2",
	"golang.org/x/sys",
	"golang.org/x/time",
}

// notLibrary are the core module's packages that are not the library:
// what only the command uses, examples and interop helpers.
var notLibrary = []string{"/internal/gen", "/examples/", "/interop/"}

const coreModule = "github.com/procxy/procxy"

// goList runs go list in dir, on its own module (GOWORK=off: the
// workspace would mix the modules' requirements).
func goList(t *testing.T, dir string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list %s in %s: %v\n%s", strings.Join(args, " "), dir, err, stderr)
	}
	return strings.Fields(string(out))
}

// TestLibraryDeps keeps the core module lean. The command is a module of
// its own (cmd/procxy), so the plotting, progress bar, terminal and NATS
// modules it brings must not appear in the core module's requirements at
// all, and no package a procxy user imports — procxy, rpc/..., host,
// worker, transport/..., childproc, ipc and the rest — may depend on a
// module other than libraryDeps.
func TestLibraryDeps(t *testing.T) {
	const root = "../../../.."
	var lib []string
	for _, p := range goList(t, root, "./...") {
		if !slices.ContainsFunc(notLibrary, func(s string) bool { return strings.Contains(p+"/", s) }) {
			lib = append(lib, p)
		}
	}
	for _, want := range []string{"", "/rpc", "/rpc/wire", "/rpc/codec", "/host", "/worker", "/transport", "/childproc", "/ipc"} {
		if !slices.Contains(lib, coreModule+want) {
			t.Fatalf("library packages %v lack %s", lib, coreModule+want)
		}
	}

	// What the command brings that the library does not have.
	const modules = `-f={{if not .Standard}}{{with .Module}}{{.Path}}{{end}}{{end}}`
	heavy := map[string]bool{}
	for _, m := range goList(t, "../..", "-deps", modules, "./...") {
		if !strings.HasPrefix(m, coreModule) && !slices.Contains(libraryDeps, m) {
			heavy[m] = true
		}
	}
	for _, m := range []string{"gonum.org/v1/plot", "github.com/schollz/progressbar/v3", "golang.org/x/term", "github.com/nats-io/nats.go"} {
		if !heavy[m] {
			t.Errorf("the command no longer depends on %s: update this test", m)
		}
	}

	required := goList(t, root, "-m", "-f={{.Path}}", "all")
	for _, m := range required {
		if heavy[m] || strings.HasPrefix(m, coreModule+"/") {
			t.Errorf("the core module requires %s, which only the command may use: keep it out of go.mod (go mod tidy)", m)
		}
	}

	fields := goList(t, root, append([]string{"-deps", "-f={{if not .Standard}}{{.ImportPath}} {{with .Module}}{{.Path}}{{end}}{{end}}"}, lib...)...)
	var bad []string
	for i := 0; i+1 < len(fields); i += 2 {
		if m := fields[i+1]; m != coreModule && !slices.Contains(libraryDeps, m) {
			bad = append(bad, fields[i])
		}
	}
	for _, p := range lib { // name the library packages that bring them in
		for _, d := range goList(t, root, "-deps", p) {
			if slices.Contains(bad, d) {
				t.Errorf("%s depends on %s, which is not one of the library's modules %v: keep it out of the library", p, d, libraryDeps)
			}
		}
	}
}
