package worker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procxy/procxy/rpc/wire"
	"github.com/procxy/procxy/worker"
)

// waitLimit bounds every wait in these tests; nothing should take this long.
const waitLimit = 10 * time.Second

// syncBuffer is a bytes.Buffer safe for the worker's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness runs a Worker in-process with pipes for its stdin and stdout, as
// a Procwire parent would see it.
type harness struct {
	t      *testing.T
	w      *worker.Worker
	stdin  *os.File    // the parent's end of the worker's stdin
	lines  chan string // lines the worker wrote to stdout, after $init
	init   string      // the $init line
	pipe   string      // the socket path announced in $init
	runErr chan error  // Run's result
	log    *syncBuffer // everything the worker logged
	stdout *os.File    // the worker's end of its stdout
	cancel context.CancelFunc
}

// start builds a Worker with opts, lets register add methods and events,
// runs it and reads its $init line. Cleanup ends the session (stdin EOF)
// and checks that Run returned.
func start(t *testing.T, opts worker.Options, register func(w *worker.Worker)) *harness {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, stdin: inW, lines: make(chan string, 1000), runErr: make(chan error, 1), log: new(syncBuffer), stdout: outW}
	opts.Stdin, opts.Stdout = inR, outW
	opts.Logger = slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.w = worker.New(opts)
	if register != nil {
		register(h.w)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(h.lines)
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	wg.Go(func() { h.runErr <- h.w.Run(ctx) })
	t.Cleanup(func() {
		inW.Close() // stdin EOF ends the session if the test has not
		select {
		case err := <-h.runErr:
			h.runErr <- err
		case <-time.After(waitLimit):
			t.Errorf("Run did not return after stdin EOF; log:\n%s", h.log)
			cancel()
		}
		cancel()
		outW.Close()
		wg.Wait()
		inR.Close()
		outR.Close()
		if t.Failed() {
			t.Logf("worker log:\n%s", h.log)
		}
	})
	h.init = h.line()
	var msg struct{ Params struct{ Pipe string } }
	if err := json.Unmarshal([]byte(h.init), &msg); err != nil || msg.Params.Pipe == "" {
		t.Fatalf("first stdout line is not $init (%v): %q", err, h.init)
	}
	h.pipe = msg.Params.Pipe
	return h
}

// line returns the next line the worker wrote to stdout.
func (h *harness) line() string {
	h.t.Helper()
	select {
	case l, ok := <-h.lines:
		if !ok {
			h.t.Fatal("worker stdout closed")
		}
		return l
	case <-time.After(waitLimit):
		h.t.Fatal("no line on the worker's stdout")
	}
	return ""
}

// rest returns the lines the worker wrote to stdout that were not read
// yet, once Run has returned.
func (h *harness) rest() []string {
	h.t.Helper()
	h.wait()
	h.stdout.Close() // Run is done with it
	var lines []string
	for l := range h.lines {
		lines = append(lines, l)
	}
	return lines
}

// send writes one control line to the worker's stdin.
func (h *harness) send(line string) {
	h.t.Helper()
	if _, err := io.WriteString(h.stdin, line+"\n"); err != nil {
		h.t.Fatal(err)
	}
}

// wait waits for Run to return and returns its error.
func (h *harness) wait() error {
	h.t.Helper()
	select {
	case err := <-h.runErr:
		h.runErr <- err // for Cleanup
		return err
	case <-time.After(waitLimit):
		h.t.Fatalf("Run did not return; log:\n%s", h.log)
	}
	return nil
}

// peer is a hand-written parent's data connection to the worker.
type peer struct {
	t *testing.T
	c net.Conn
	r *wire.Reader
}

// dial connects to the worker's socket and, if token is non-nil, sends the
// auth frame first.
func (h *harness) dial(token []byte) *peer {
	h.t.Helper()
	c, err := net.Dial("unix", h.pipe)
	if err != nil {
		h.t.Fatalf("dial %s: %v", h.pipe, err)
	}
	h.t.Cleanup(func() { c.Close() })
	p := &peer{t: h.t, c: c, r: wire.NewReader(c, 0)}
	if token != nil {
		p.write(wire.MethodAuth, 0, 0, token)
	}
	return p
}

// write sends one frame.
func (p *peer) write(method uint16, flags wire.Flags, id uint32, payload []byte) {
	p.t.Helper()
	h := wire.Header{Method: method, Flags: flags, ID: id, Len: uint32(len(payload))}
	if _, err := p.c.Write(append(h.Append(nil), payload...)); err != nil {
		p.t.Fatalf("write frame: %v", err)
	}
}

// writeHex sends bytes given in hex (spaces ignored).
func (p *peer) writeHex(s string) {
	p.t.Helper()
	if _, err := p.c.Write(unhex(p.t, s)); err != nil {
		p.t.Fatalf("write: %v", err)
	}
}

// frame reads the next frame and returns it as hex: header, a space, payload.
func (p *peer) frame() string {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(waitLimit))
	f, err := p.r.ReadFrame()
	if err != nil {
		p.t.Fatalf("read frame: %v", err)
	}
	return hex.EncodeToString(f.Header.Append(nil)) + " " + hex.EncodeToString(f.Payload)
}

// closed checks that the worker closes the connection without sending a frame.
func (p *peer) closed() {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(waitLimit))
	f, err := p.r.ReadFrame()
	if err == nil {
		p.t.Fatalf("got frame %v %x, want the connection closed", f.Header, f.Payload)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		p.t.Fatalf("read: %v, want EOF (connection closed by the worker)", err)
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recv waits for a value on ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}
