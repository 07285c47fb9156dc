package delvetest

import (
	"fmt"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Version is the Delve release tests build, from the Go module proxy.
const Version = "v1.27.2"

// Dlv returns the path of dlv Version, building it with `go install
// github.com/go-delve/delve/cmd/dlv@Version` into the user's cache
// directory the first time (later runs reuse it).
func Dlv(t testing.TB) string {
	t.Helper()
	cache, cerr := os.UserCacheDir()
	if cerr != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "procxy-test", "dlv-"+Version)
	bin := filepath.Join(dir, "dlv")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatalf("delvetest: %v", err)
	}
	gobin, err := os.MkdirTemp(filepath.Dir(dir), "build-")
	if err != nil {
		t.Fatalf("delvetest: %v", err)
	}
	defer os.RemoveAll(gobin)
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("delvetest: building dlv needs the go command: %v", err)
	}
	cmd := exec.Command(goCmd, "install", "github.com/go-delve/delve/cmd/dlv@"+Version)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("delvetest: go install dlv@%s: %v\n%s", Version, err, out)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("delvetest: %v", err)
	}
	// Renamed into place, so that concurrent test binaries never run a
	// half-written dlv.
	if err := os.Rename(filepath.Join(gobin, "dlv"), bin); err != nil {
		if _, serr := os.Stat(bin); serr != nil {
			t.Fatalf("delvetest: %v", err)
		}
	}
	return bin
}

// Client is a connection to a dlv API server.
type Client struct{ rpc *rpc.Client }

// Connect connects to the dlv API at addr; the connection is closed when
// t ends.
func Connect(t testing.TB, addr string) *Client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("delvetest: connect to dlv at %s: %v", addr, err)
	}
	c := &Client{rpc: jsonrpc.NewClient(nc)}
	t.Cleanup(func() { c.rpc.Close() })
	return c
}

// Breakpoint is the part of Delve's api.Breakpoint the tests use.
type Breakpoint struct {
	ID           int    `json:"id"`
	FunctionName string `json:"functionName,omitempty"`
	File         string `json:"file"`
	Line         int    `json:"line"`
}

// Thread is the part of Delve's api.Thread the tests use.
type Thread struct {
	ID         int         `json:"id"`
	Function   *Function   `json:"function,omitempty"`
	Breakpoint *Breakpoint `json:"breakPoint,omitempty"`
}

// Function is the part of Delve's api.Function the tests use.
type Function struct {
	Name string `json:"name"`
}

// State is the part of Delve's api.DebuggerState the tests use.
type State struct {
	Running       bool    `json:"Running"`
	CurrentThread *Thread `json:"currentThread,omitempty"`
	Exited        bool    `json:"exited"`
	ExitStatus    int     `json:"exitStatus"`
}

// Goroutine is the part of Delve's api.Goroutine the tests use.
type Goroutine struct {
	ID          int64    `json:"id"`
	CurrentLoc  Location `json:"currentLoc"`
	UserCurrent Location `json:"userCurrentLoc"`
}

// Location is the part of Delve's api.Location the tests use.
type Location struct {
	File     string    `json:"file"`
	Line     int       `json:"line"`
	Function *Function `json:"function,omitempty"`
}

// Command runs a debugger command ("halt", "continue", "next", …) and
// returns the state once the target stops again.
func (c *Client) Command(name string) (*State, error) {
	var out struct{ State State }
	err := c.rpc.Call("RPCServer.Command", struct{ Name string }{name}, &out)
	if err != nil {
		return nil, fmt.Errorf("dlv %s: %w", name, err)
	}
	return &out.State, nil
}

// CreateBreakpoint sets a breakpoint at the start of the function fn
// (fully qualified, such as "main.(*T).Method").
func (c *Client) CreateBreakpoint(fn string) (*Breakpoint, error) {
	var out struct{ Breakpoint Breakpoint }
	in := struct{ Breakpoint Breakpoint }{Breakpoint{FunctionName: fn}}
	if err := c.rpc.Call("RPCServer.CreateBreakpoint", in, &out); err != nil {
		return nil, fmt.Errorf("dlv break %s: %w", fn, err)
	}
	return &out.Breakpoint, nil
}

// ClearBreakpoint removes breakpoint id.
func (c *Client) ClearBreakpoint(id int) error {
	var out struct{}
	return c.rpc.Call("RPCServer.ClearBreakpoint", struct{ Id int }{id}, &out)
}

// Goroutines lists the target's goroutines (the target must be stopped).
func (c *Client) Goroutines() ([]Goroutine, error) {
	var out struct{ Goroutines []Goroutine }
	err := c.rpc.Call("RPCServer.ListGoroutines", struct{ Start, Count int }{0, 0}, &out)
	return out.Goroutines, err
}
