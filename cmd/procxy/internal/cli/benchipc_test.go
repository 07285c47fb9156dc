package cli_test

import (
	"context"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/procxy/procxy/cmd/procxy/internal/cli"
	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/natsipc"
	"github.com/procxy/procxy/rpc/codec"
)

// serveEcho serves svc.echo (the request's bytes back) and svc.count (a
// stream of n small chunks) on c.
func serveEcho(t *testing.T, c *ipc.Conn) {
	t.Helper()
	if _, err := ipc.Handle(c, "svc.echo", func(_ context.Context, b []byte) ([]byte, error) { return b, nil },
		ipc.WithCodec(codec.Raw)); err != nil {
		t.Fatal(err)
	}
	if _, err := ipc.HandleStream(c, "svc.count", func(_ context.Context, n int) iter.Seq2[int, error] {
		return func(yield func(int, error) bool) {
			for i := range n {
				if !yield(i, nil) {
					return
				}
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestBenchIPC: procxy bench against an ipc subject, on an ipc server and
// on an embedded nats-server: the summary adds up and the chart is drawn,
// as for a worker's method.
func TestBenchIPC(t *testing.T) {
	dir, err := os.MkdirTemp("", "px")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := ipc.Listen(t.Context(), filepath.Join(dir, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	serveEcho(t, srv.Conn())

	ns, err := natsipc.StartServer(t.Context(), natsipc.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	nc, err := natsipc.Connect(t.Context(), ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	serveEcho(t, nc)

	for _, tt := range []struct {
		name, flag, addr, where string
	}{
		{"ipc", "-server", srv.Addr(), "the ipc server " + srv.Addr()},
		{"nats", "-nats", ns.URL(), "the NATS server at " + ns.URL()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svg := filepath.Join(t.TempDir(), "echo.svg")
			r := run(t, "", workerCmd{}, "bench", tt.flag, tt.addr, "-n", "300", "-c", "4", "-warmup", "20", "-json",
				"-progress", "none", "-chart", svg, "-H", "Trace-Id:1", "svc.echo", "hello")
			b := parseBench(t, r)
			if r.code != 0 || b.Subject != "svc.echo" || b.Method != "" || b.Kind != "request" || b.Server != tt.where ||
				b.Calls != 300 || b.Failed != 0 || b.Concurrency != 4 || b.Warmup != 20 || b.PID != 0 || len(b.Histogram) != 12 {
				t.Errorf("bench: exit %d (%v), %+v", r.code, r.err, b)
			}
			// The request is the data and the header; the reply, the data.
			if b.RequestBytes != len("hello")+6+len("Trace-Id")+1 || b.ReceivedMBps <= 0 {
				t.Errorf("request of %d bytes, %v MB/s received", b.RequestBytes, b.ReceivedMBps)
			}
			if b.CPU == nil || b.CPU.Procxy <= 0 || b.CPU.Worker != 0 {
				t.Errorf("CPU per call %+v, want procxy's alone", b.CPU)
			}
			checkLatencies(t, b)
			checkSVG(t, svg, b)

			r = run(t, "", workerCmd{}, "bench", tt.flag, tt.addr, "-n", "50", "-progress", "none", "-stream", "-codec", "msgpack", "svc.count", "5")
			for _, want := range []string{
				"Summary:\n  Subject:       svc.count (stream)\n  Server:        " + tt.where + "\n",
				"\n  Calls:         50 succeeded, 0 failed\n  Concurrency:   1\n  Duration:      ",
				"\n  Data:          1 B per request; ",
				"\n  CPU per call:  ",
				"\nLatency histogram (bucket bounds grow by equal ratios):\n",
			} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("bench -stream summary lacks %q:\n%s", want, r.stdout)
				}
			}

			r = run(t, "", workerCmd{}, "bench", tt.flag, tt.addr, "-json", "-n", "10", "-progress", "none", "svc.nobody", "x")
			b = parseBench(t, r)
			if r.code != cli.ExitNoResponder || b.Calls != 0 || b.Failed != 10 || len(b.Errors) != 1 ||
				!strings.HasSuffix(b.Errors[0].Message, "no responders") {
				t.Errorf("bench of a subject nobody serves: exit %d, %q, %+v", r.code, r.errLine(), b)
			}
		})
	}

	r := run(t, "", workerCmd{}, "bench", "-server", filepath.Join(dir, "none.sock"), "svc.echo", "x")
	if r.code != cli.ExitWorker || !strings.HasPrefix(r.errLine(), "procxy: cannot connect to the ipc server ") {
		t.Errorf("bench without a server: exit %d, %q", r.code, r.errLine())
	}
}
