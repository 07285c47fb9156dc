package rpc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/transport"
)

const childEnv = "PROCXY_RPC_TEST_CHILD" // the socket path the child dials

const mProduced uint16 = 50

// childMain runs the test service in a child process when the test binary
// is re-run as one. It dials the parent's socket twice (a data and a
// control connection sharing one service) and exits when both end.
func childMain() bool {
	path := os.Getenv(childEnv)
	if path == "" {
		return false
	}
	s := newService()
	m := s.mux()
	var last int
	var mu sync.Mutex
	m.Handle(mProduced, rpc.ResultFunc(func(context.Context, any) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		select {
		case last = <-s.produced:
		default:
		}
		return last, nil
	}))
	var wg sync.WaitGroup
	for range 2 {
		c, err := net.Dial("unix", path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		conn := rpc.NewConn(c, rpc.Options{Role: rpc.RoleChild, Handlers: m})
		wg.Go(func() { <-conn.Done(); conn.Close() })
	}
	wg.Wait()
	os.Exit(0)
	return true
}

// child is a peer process with a data and a control connection.
type child struct {
	cmd        *exec.Cmd
	data, ctrl *rpc.Conn
}

func startChild(t *testing.T, opts rpc.Options) *child {
	t.Helper()
	l, err := transport.ListenPrivate("rpctest")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+l.Path(), "GORACE=atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ch := &child{cmd: cmd}
	for i := range 2 {
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		opts.Role = rpc.RoleParent
		conn := rpc.NewConn(c, opts)
		t.Cleanup(func() { conn.Close() })
		if i == 0 {
			ch.data = conn
		} else {
			ch.ctrl = conn
		}
	}
	return ch
}

// produced asks the child how many chunks its infinite stream has sent.
func produced(t *testing.T, c *child) int {
	var n int
	if err := c.ctrl.Call(t.Context(), rpc.Method{ID: mProduced}, nil, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// rss returns a process's resident set size in bytes (Linux).
func rss(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func TestProcessConcurrentCalls(t *testing.T) {
	c := startChild(t, rpc.Options{})
	const n = 10000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			var sum int
			if err := c.data.Call(t.Context(), add, addArgs{i, 1}, &sum); err != nil {
				errs <- err
			} else if sum != i+1 {
				errs <- fmt.Errorf("add(%d, 1) = %d: answers crossed", i, sum)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestProcessAbort(t *testing.T) {
	c := startChild(t, rpc.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- c.data.Call(ctx, slow, 60_000, nil) }()
	time.Sleep(20 * time.Millisecond) // let the request reach the child
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// The child's handler saw its context cancelled.
	for {
		var n int
		if err := c.ctrl.Call(t.Context(), aborts, nil, &n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProcessRequestIDWrap(t *testing.T) {
	c := startChild(t, rpc.Options{})
	c.data.SetNextID(0xFFFFFFFD)
	for i := range 5 { // ids FFFFFFFE, FFFFFFFF, 1, 2, 3
		var sum int
		if err := c.data.Call(t.Context(), add, addArgs{i, 0}, &sum); err != nil || sum != i {
			t.Fatalf("call %d across the wrap: %d, %v", i, sum, err)
		}
	}
}

// TestProcessSlowConsumer: a consumer that stops reading stops the producer
// in the other process; memory stays bounded on both sides while 128 MiB
// flow through once the consumer reads again.
func TestProcessSlowConsumer(t *testing.T) {
	const chunk = 64 << 10
	const buffer = 16
	c := startChild(t, rpc.Options{StreamBuffer: buffer})
	st, err := c.data.OpenStream(t.Context(), infinite, chunk)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var b []byte
	if !st.Next(&b) {
		t.Fatal(st.Err())
	}
	// Wait until the producer is stuck.
	prev := -1
	for n := produced(t, c); n != prev; n = produced(t, c) {
		prev = n
		time.Sleep(100 * time.Millisecond)
	}
	// buffered chunks + the reader's hands + kernel socket buffers (a few hundred KiB)
	limit := buffer + 2 + (4<<20)/chunk
	t.Logf("producer stalled after %d chunks of %d KiB (limit %d)", prev, chunk>>10, limit)
	if prev > limit {
		t.Errorf("producer ran %d chunks ahead of a stopped consumer, want at most %d", prev, limit)
	}
	childBefore := rss(t, c.cmd.Process.Pid)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapInuse
	for range 2048 { // 128 MiB
		if !st.Next(&b) || len(b) != chunk {
			t.Fatalf("chunk: %d bytes, %v", len(b), st.Err())
		}
	}
	childAfter := rss(t, c.cmd.Process.Pid)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("child RSS %d → %d KiB; parent heap in use %d → %d KiB", childBefore>>10, childAfter>>10, heapBefore>>10, ms.HeapInuse>>10)
	bound := int64(16 << 20)
	if raceEnabled {
		bound = 64 << 20 // the race detector's shadow memory grows with every allocation
	}
	if grow := childAfter - childBefore; grow > bound {
		t.Errorf("child RSS grew by %d KiB while streaming 128 MiB", grow>>10)
	}
	if grow := int64(ms.HeapInuse) - int64(heapBefore); grow > 16<<20 {
		t.Errorf("parent heap grew by %d KiB while streaming 128 MiB", grow>>10)
	}
}

// TestProcessKilled: killing the peer fails every pending call and stream at
// once with an error that says the connection was lost.
func TestProcessKilled(t *testing.T) {
	c := startChild(t, rpc.Options{})
	const n = 50
	errs := make(chan error, n)
	for range n {
		go func() { errs <- c.data.Call(context.Background(), slow, 60_000, nil) }()
	}
	st, err := c.data.OpenStream(t.Context(), hang, nil)
	if err != nil {
		t.Fatal(err)
	}
	for c.data.Pending() < n+1 {
		time.Sleep(time.Millisecond)
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	for range n {
		if err := <-errs; !errors.Is(err, rpc.ErrClosed) {
			t.Fatalf("pending call: got %v, want ErrClosed", err)
		}
	}
	for st.Next(new(int)) {
	}
	if !errors.Is(st.Err(), rpc.ErrClosed) {
		t.Errorf("stream: got %v, want ErrClosed", st.Err())
	}
	t.Logf("pending calls failed with: %v", c.data.Err())
}

// TestProcessKilledWhileStalled: when a slow stream consumer has stopped the
// connection's reading, the process owner still ends every call at once with
// the exit status it learns from Wait.
func TestProcessKilledWhileStalled(t *testing.T) {
	c := startChild(t, rpc.Options{StreamBuffer: 4})
	st, err := c.data.OpenStream(t.Context(), infinite, 1024)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.data.Call(context.Background(), slow, 60_000, nil) }()
	for c.data.Pending() < 2 {
		time.Sleep(time.Millisecond)
	}
	// Wait until the producer is stuck, so the data connection has stopped reading.
	prev := -1
	for n := produced(t, c); n != prev; n = produced(t, c) {
		prev = n
		time.Sleep(100 * time.Millisecond)
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	exit := c.cmd.Wait()
	c.data.CloseWithError(fmt.Errorf("peer process exited: %w", exit))
	err = <-errc
	var ee *exec.ExitError
	if !errors.Is(err, rpc.ErrClosed) || !errors.As(err, &ee) {
		t.Fatalf("pending call: got %v, want ErrClosed with the exit status", err)
	}
	n := 0
	for st.Next(new([]byte)) {
		n++
	}
	if !errors.As(st.Err(), &ee) || n > 4 {
		t.Errorf("stream: %d buffered chunks then %v", n, st.Err())
	}
	t.Logf("pending call failed with: %v", err)
}

func TestProcessCrashMidCall(t *testing.T) {
	c := startChild(t, rpc.Options{})
	errc := make(chan error, 1)
	go func() { errc <- c.data.Call(context.Background(), slow, 60_000, nil) }()
	for c.data.Pending() == 0 {
		time.Sleep(time.Millisecond)
	}
	c.ctrl.Send(t.Context(), crash, nil)
	if err := <-errc; !errors.Is(err, rpc.ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
	err := c.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("child exit: %v, want status 3", err)
	}
}

func TestProcessLargeEcho(t *testing.T) {
	c := startChild(t, rpc.Options{})
	big := bytes.Repeat([]byte{7}, 10<<20)
	var out []byte
	if err := c.data.Call(t.Context(), echoRaw, big, &out); err != nil || !bytes.Equal(out, big) {
		t.Fatalf("10 MiB: %d bytes, %v", len(out), err)
	}
	_ = codec.Raw
}
