package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/ipc"
)

// Inventory is a type the workers in TestIPCWorkers serve.
type Inventory struct{}

func (*Inventory) Count(sku string) int { return len(sku) }

// A Func the workers serve too.
var _ = procxy.Func("test.restock", func(_ context.Context, n int) (int, error) { return n, nil })

func init() { procxy.Register[Inventory](nil, procxy.Name("test.Inventory")) }

// TestIPCWorkers: procxy ipc workers lists the workers serving on an ipc
// server (two, here goroutines of this process on the server's own
// connection and on a client), and waits for a number of them.
func TestIPCWorkers(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	addr := filepath.Join(shortDir(t), "w.sock")
	srv, err := ipc.Listen(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := ipc.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	served := make(chan error, 2)
	for _, conn := range []*ipc.Conn{srv.Conn(), c} {
		go func() {
			served <- procxy.Serve(ctx, conn, procxy.WorkerVersion("1.4.2"), procxy.Serving("test.Inventory", "test.restock"))
		}()
	}
	defer func() {
		cancel()
		for range 2 {
			if err := <-served; err != nil {
				t.Error(err)
			}
		}
	}()

	r := runEnv(t, nil, "", "ipc", "workers", "-server", addr, "-type", "test.Inventory", "-min", "2", "-wait", "20s")
	r.check(t, "workers -min 2", 0, r.stdout, "")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	row := regexp.MustCompile(`^[0-9a-f]{16}  +\S+  +\d+  +1\.4\.2  +0  +\d+  +\d+s  +test\.Inventory \(1 method\), func test\.restock$`)
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") || !row.MatchString(lines[1]) || !row.MatchString(lines[2]) {
		t.Errorf("procxy ipc workers printed:\n%s", r.stdout)
	}

	r = runEnv(t, nil, "", "ipc", "workers", "-server", addr, "-json")
	var ws []procxy.WorkerInfo
	if err := json.Unmarshal([]byte(r.stdout), &ws); err != nil || len(ws) != 2 || ws[0].Types[0].Methods[0].Sig != "(string) int" {
		t.Errorf("procxy ipc workers -json: %v\n%s", err, r.stdout)
	}

	r = runEnv(t, nil, "", "ipc", "workers", "-server", addr, "-type", "test.Inventory", "-min", "3", "-wait", "300ms")
	if r.code != 5 || !strings.Contains(r.stderr, "2 of 3 workers serving test.Inventory") {
		t.Errorf("waiting for a third worker: exit %d, stderr %q; want 5 and what was found", r.code, r.stderr)
	}
}
