package natsipc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/internal/testproc"
	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/natsipc"
)

// NodeCalc is served by worker processes attached to a NATS server.
type NodeCalc struct{ procxy.Emitter }

func (*NodeCalc) Add(a, b int) int { return a + b }

// Echo returns its argument.
func (*NodeCalc) Echo(b []byte) []byte { return b }

// Where says which worker served the call and through which server.
func (*NodeCalc) Where() (Where, error) {
	return Where{PID: os.Getpid(), Server: workerConn.Info().Server}, nil
}

// Hang is as in the root package's fleet tests: it blocks until its
// context ends (telling "hanging" its pid first), unless the marker file
// exists, in which case it returns its pid; it creates the marker.
func (c *NodeCalc) Hang(ctx context.Context, marker string) (int, error) {
	if _, err := os.Stat(marker); err == nil {
		return os.Getpid(), nil
	}
	os.WriteFile(marker, nil, 0o600)
	c.Emit("hanging", os.Getpid())
	<-ctx.Done()
	return 0, ctx.Err()
}

type Where struct {
	PID    int    `msgpack:"pid"`
	Server string `msgpack:"server"`
}

func init() { procxy.Register[NodeCalc](nil, procxy.Name("nats.NodeCalc")) }

const envWorker = "NATSIPC_TEST_WORKER"

var workerConn *ipc.Conn

// runWorker is a worker process attached to the NATS server at url until
// its stdin closes or it is signalled.
func runWorker(url string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() { io.Copy(io.Discard, os.Stdin); stop() }()
	c, err := natsipc.Connect(ctx, url, ipc.Reconnect(20*time.Millisecond, 200*time.Millisecond, 0.2, 0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	defer c.Close()
	workerConn = c
	if err := procxy.Serve(ctx, c, procxy.WorkerVersion("v1")); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	return 0
}

// startWorker starts a worker process attached to url; it ends with t.
func startWorker(t *testing.T, url string) *exec.Cmd {
	t.Helper()
	return testproc.Start(t, envWorker+"="+url)
}

// TestFleet calls a type served by worker processes on a NATS server: calls
// spread over the workers, events arrive, and a worker killed mid-call
// fails the call with ErrWorkerGone after three missed keepalives — or,
// for an idempotent method, the call is retried on another worker.
func TestFleet(t *testing.T) {
	s := startServer(t, natsipc.ServerOptions{})
	c := connect(t, s.URL())
	for range 2 {
		startWorker(t, s.URL())
	}
	ctx := t.Context()
	if _, err := procxy.WaitWorkers(ctx, c, "nats.NodeCalc", 2); err != nil {
		t.Fatal(err)
	}
	calc, err := procxy.NewRemote[NodeCalc](c, procxy.Name("nats.NodeCalc"), procxy.Keepalive(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := procxy.Call[int](ctx, calc, "Add", 2, 3); err != nil || sum != 5 {
		t.Fatalf("Add(2, 3) = %d, %v", sum, err)
	}
	// Larger than the server's maximum payload both ways: the argument and
	// the result travel as streams.
	big := make([]byte, c.MaxPayload()+1<<20)
	for i := range big {
		big[i] = byte(i)
	}
	if echo, err := procxy.Call[[]byte](ctx, calc, "Echo", big); err != nil || !bytes.Equal(echo, big) {
		t.Fatalf("Echo of %d bytes (max payload %d): %d bytes back, %v", len(big), c.MaxPayload(), len(echo), err)
	}
	pids := map[int]bool{}
	for range 40 {
		w, err := procxy.Call[Where](ctx, calc, "Where")
		if err != nil {
			t.Fatal(err)
		}
		pids[w.PID] = true
	}
	if len(pids) != 2 {
		t.Errorf("40 calls were served by %d workers, want 2", len(pids))
	}

	for _, idempotent := range []bool{false, true} {
		opts := []procxy.Option{procxy.Name("nats.NodeCalc"), procxy.Keepalive(50 * time.Millisecond)}
		if idempotent {
			opts = append(opts, procxy.Retries(5), procxy.Idempotent("Hang"))
		}
		r, err := procxy.NewRemote[NodeCalc](c, opts...)
		if err != nil {
			t.Fatal(err)
		}
		hanging := make(chan int, 1)
		remove := procxy.OnEvent(r, "hanging", func(pid int) { hanging <- pid })
		errc := make(chan error, 1)
		var got int
		go func() {
			var err error
			got, err = procxy.Call[int](ctx, r, "Hang", filepath.Join(t.TempDir(), "marker"))
			errc <- err
		}()
		pid := <-hanging
		testproc.Kill(pid)
		err = <-errc
		remove()
		r.Close()
		if !idempotent {
			if !errors.Is(err, procxy.ErrWorkerGone) || !strings.Contains(err.Error(), "no sign of life") {
				t.Fatalf("Hang on a worker killed mid-call: %v; want ErrWorkerGone after missed keepalives", err)
			}
			startWorker(t, s.URL())
			if _, err := procxy.WaitWorkers(ctx, c, "nats.NodeCalc", 2); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil || got == 0 || got == pid {
			t.Fatalf("idempotent Hang after its worker died: pid %d, %v; want an answer from another worker", got, err)
		}
	}
}

// TestFleetClusterFailover is TestClusterFailover with procxy: worker
// processes serving NodeCalc are attached to different nodes of a
// three-node cluster, callers on every node call it through a Remote, and
// one node shuts down mid-load. Calls cross nodes; idempotent calls all
// succeed; the others succeed or fail with ErrWorkerGone; none hangs.
func TestFleetClusterFailover(t *testing.T) {
	nodes := startCluster(t, 3)
	const victim = 1
	for _, n := range []int{0, victim, victim, 2} {
		startWorker(t, nodes[n].URL())
	}
	ctx := t.Context()
	requesters := make([]*clusterMember, len(nodes))
	for i := range nodes {
		requesters[i] = joinCluster(t, fmt.Sprintf("caller@n%d", i), nodes[i])
	}
	for _, r := range requesters {
		if _, err := procxy.WaitWorkers(ctx, r.c, "nats.NodeCalc", 4); err != nil {
			t.Fatal(err)
		}
	}
	var idem, plain outcome // procxy.ErrWorkerGone matches ipc.ErrResponderGone or ErrConnectionLost, ErrNoWorker ipc.ErrNoResponders
	var total atomic.Int64
	stop, halfway := make(chan struct{}), make(chan struct{})
	var halfOnce sync.Once
	const before, after = 300, 300
	var wg sync.WaitGroup
	for _, r := range requesters {
		idemCalc, err := procxy.NewRemote[NodeCalc](r.c, procxy.Name("nats.NodeCalc"), procxy.Keepalive(100*time.Millisecond),
			procxy.Retries(100), procxy.Idempotent("Where"), procxy.CallTimeout(20*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		plainCalc, err := procxy.NewRemote[NodeCalc](r.c, procxy.Name("nats.NodeCalc"), procxy.Keepalive(100*time.Millisecond),
			procxy.CallTimeout(20*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for g := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					o, calc := &plain, plainCalc
					if (i+g)%2 == 0 {
						o, calc = &idem, idemCalc
					}
					from := r.c.Info().Server
					w, err := procxy.Call[Where](ctx, calc, "Where")
					o.record(err)
					if err == nil && w.Server != from {
						o.crossNode.Add(1)
					}
					if total.Add(1) == before {
						halfOnce.Do(func() { close(halfway) })
					}
				}
			})
		}
	}
	<-halfway
	atShutdown := total.Load()
	if err := nodes[victim].Close(); err != nil {
		t.Fatal(err)
	}
	<-requesters[victim].reconnected
	// The workers that were on the node serve again, from other nodes.
	if _, err := procxy.WaitWorkers(ctx, requesters[0].c, "nats.NodeCalc", 4); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "more calls after the shutdown", func() bool { return total.Load() >= atShutdown+after })
	close(stop)
	wg.Wait() // no call hung: each returned

	t.Logf("idempotent calls: %v", &idem)
	t.Logf("other calls: %v", &plain)
	if n := idem.failed(); n != 0 {
		t.Errorf("%d idempotent calls failed: %v (first: %v)", n, &idem, idem.firstOther.Load())
	}
	if n := plain.deadline.Load() + plain.other.Load(); n != 0 {
		t.Errorf("%d calls failed without a clear error: %v (first: %v)", n, &plain, plain.firstOther.Load())
	}
	if idem.crossNode.Load()+plain.crossNode.Load() == 0 {
		t.Error("no call was answered by a worker on another node")
	}
}
