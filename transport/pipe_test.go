package transport_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/procxy/procxy/transport"
)

// pipe returns both ends of a transport.Pipe, closed at cleanup.
func pipe(t testing.TB) (a, b net.Conn) {
	t.Helper()
	a, b = transport.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func closeWrite(c net.Conn) error { return c.(interface{ CloseWrite() error }).CloseWrite() }

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	p := make([]byte, n)
	r.Read(p)
	return p
}

func TestPipeOrder(t *testing.T) {
	tests := []struct {
		name          string
		size, chunk   int // bytes in all, bytes per Write
		readBuf       int // bytes per Read
		readAfterward bool
	}{
		{"bytes", 1000, 1, 7, false},
		{"small-chunks", 100 << 10, 100, 4096, false},
		{"odd-sizes", 1 << 20, 4093, 1021, false},
		{"buffer-sized", 4 * transport.PipeBufferSize, transport.PipeBufferSize, transport.PipeBufferSize, false},
		{"fits-unread", transport.PipeBufferSize, 1000, 64 << 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := pipe(t)
			want := randomBytes(tt.size, uint64(tt.size))
			write := func() error {
				for p := want; len(p) > 0; {
					k := min(tt.chunk, len(p))
					if n, err := a.Write(p[:k]); n != k || err != nil {
						return err
					}
					p = p[k:]
				}
				return closeWrite(a)
			}
			var got []byte
			read := func() (err error) {
				got, err = io.ReadAll(b)
				return err
			}
			if tt.readAfterward { // everything fits, so the writer never blocks
				if err := write(); err != nil {
					t.Fatal(err)
				}
				if err := read(); err != nil {
					t.Fatal(err)
				}
			} else {
				var wg sync.WaitGroup
				var werr error
				wg.Go(func() { werr = write() })
				rerr := read()
				wg.Wait()
				if werr != nil || rerr != nil {
					t.Fatalf("write: %v, read: %v", werr, rerr)
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes that differ from the %d written", len(got), len(want))
			}
		})
	}
}

// TestPipeLarge sends 10 MiB each way at once, as two peers that both write
// before they read would.
func TestPipeLarge(t *testing.T) {
	const size = 10 << 20
	a, b := pipe(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i, end := range []struct{ from, to net.Conn }{{a, b}, {b, a}} {
		want := randomBytes(size, uint64(i))
		wg.Go(func() {
			if _, err := end.from.Write(want); err != nil {
				errs <- err
				return
			}
			errs <- closeWrite(end.from)
		})
		wg.Go(func() {
			got, err := io.ReadAll(end.to)
			if err == nil && !bytes.Equal(got, want) {
				err = errors.New("received bytes differ from those sent")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestPipeWritesNotInterleaved checks that concurrent Writes larger than the
// buffer arrive whole.
func TestPipeWritesNotInterleaved(t *testing.T) {
	const writers, size = 8, transport.PipeBufferSize + 12345
	a, b := pipe(t)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			if _, err := a.Write(bytes.Repeat([]byte{byte('A' + i)}, size)); err != nil {
				t.Error(err)
			}
		})
	}
	got := make([]byte, writers*size)
	_, err := io.ReadFull(b, got)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[byte]bool)
	for block := range slices.Chunk(got, size) {
		if c := block[0]; seen[c] || !bytes.Equal(block, bytes.Repeat([]byte{c}, size)) {
			t.Fatalf("block starting with %q is not one whole write", c)
		}
		seen[block[0]] = true
	}
}

func TestPipeClose(t *testing.T) {
	a, b := pipe(t)
	if _, err := a.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("never read")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := a.Close(); err != nil {
			t.Fatalf("Close = %v, want nil every time", err)
		}
	}
	if got, err := io.ReadAll(b); string(got) != "last words" || err != nil {
		t.Errorf("peer read %q, %v; want the buffered bytes, then EOF", got, err)
	}
	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"peer-read-again", func() error { _, err := b.Read(make([]byte, 1)); return err }, io.EOF},
		{"peer-write", func() error { _, err := b.Write([]byte("x")); return err }, syscall.EPIPE},
		{"write", func() error { _, err := a.Write([]byte("x")); return err }, net.ErrClosed},
		{"read", func() error { _, err := a.Read(make([]byte, 1)); return err }, net.ErrClosed},
		{"close-write", func() error { return closeWrite(a) }, net.ErrClosed},
		{"set-deadline", func() error { return a.SetDeadline(time.Now()) }, net.ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestPipeCloseWrite(t *testing.T) {
	a, b := pipe(t)
	if _, err := a.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := closeWrite(a); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("more")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Write after CloseWrite = %v, want EPIPE", err)
	}
	if got, err := io.ReadAll(b); string(got) != "request" || err != nil {
		t.Fatalf("peer read %q, %v; want %q, then EOF", got, err, "request")
	}
	// The other direction still works.
	if _, err := b.Write([]byte("response")); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if got, err := io.ReadAll(a); string(got) != "response" || err != nil {
		t.Fatalf("read %q, %v; want %q, then EOF", got, err, "response")
	}
}

func TestPipeZeroLength(t *testing.T) {
	a, b := pipe(t)
	if n, err := a.Write(nil); n != 0 || err != nil {
		t.Errorf("Write(nil) = %d, %v; want 0, nil", n, err)
	}
	if n, err := b.Read(nil); n != 0 || err != nil {
		t.Errorf("Read(nil) = %d, %v; want 0, nil without blocking", n, err)
	}
}

// TestPipeBlocking runs in a synctest bubble, where synctest.Wait tells a
// blocked call from a slow one without sleeping.
func TestPipeBlocking(t *testing.T) {
	tests := []struct {
		name    string
		block   func(a, b net.Conn) error // blocks until release
		release func(a, b net.Conn)
		want    error // what block returns
	}{
		{"read-until-write", readOne, func(a, b net.Conn) { b.Write([]byte("x")) }, nil},
		{"read-until-peer-close", readOne, func(a, b net.Conn) { b.Close() }, io.EOF},
		{"read-until-close", readOne, func(a, b net.Conn) { a.Close() }, net.ErrClosed},
		{"write-until-read", writeFull, func(a, b net.Conn) { b.Read(make([]byte, 1)) }, nil},
		{"write-until-peer-close", writeFull, func(a, b net.Conn) { b.Close() }, syscall.EPIPE},
		{"write-until-close", writeFull, func(a, b net.Conn) { a.Close() }, net.ErrClosed},
		{"read-until-deadline", readOne, func(a, b net.Conn) { a.SetReadDeadline(time.Now()) }, os.ErrDeadlineExceeded},
		{"write-until-deadline", writeFull, func(a, b net.Conn) { a.SetWriteDeadline(time.Now()) }, os.ErrDeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := transport.Pipe()
				defer a.Close()
				defer b.Close()
				done := make(chan error, 1)
				go func() { done <- tt.block(a, b) }()
				synctest.Wait()
				select {
				case err := <-done:
					t.Fatalf("returned %v before release; want it blocked", err)
				default:
				}
				tt.release(a, b)
				if err := <-done; !errors.Is(err, tt.want) && err != tt.want {
					t.Errorf("got %v, want %v", err, tt.want)
				}
			})
		})
	}
}

func readOne(a, b net.Conn) error {
	_, err := a.Read(make([]byte, 1))
	return err
}

// writeFull fills a's send buffer, then blocks writing one more byte.
func writeFull(a, b net.Conn) error {
	if _, err := a.Write(make([]byte, transport.PipeBufferSize)); err != nil {
		return err
	}
	_, err := a.Write([]byte("x"))
	return err
}

func TestPipeDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := transport.Pipe()
		defer a.Close()
		defer b.Close()
		const wait = 3 * time.Second

		start := time.Now()
		a.SetReadDeadline(start.Add(wait))
		_, err := a.Read(make([]byte, 1))
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != wait {
			t.Fatalf("Read = %v after %v; want a timeout after %v", err, time.Since(start), wait)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("Read error %v is not a net.Error with Timeout() true", err)
		}

		// A passed deadline fails even with data waiting; clearing it lets
		// the read through.
		b.Write([]byte("y"))
		if _, err := a.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Read after the deadline = %v, want a timeout", err)
		}
		a.SetReadDeadline(time.Time{})
		if n, err := a.Read(make([]byte, 1)); n != 1 || err != nil {
			t.Errorf("Read after clearing the deadline = %d, %v; want 1, nil", n, err)
		}

		// Moving a deadline later while a call waits extends the wait.
		start = time.Now()
		a.SetWriteDeadline(start.Add(wait))
		go func() {
			time.Sleep(wait / 2)
			a.SetWriteDeadline(start.Add(2 * wait))
		}()
		if err := writeFull(a, b); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != 2*wait {
			t.Errorf("Write = %v after %v; want a timeout after %v", err, time.Since(start), 2*wait)
		}
		synctest.Wait()
	})
}
