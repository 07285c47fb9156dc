package transport_test

import (
	"io"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/procxy/procxy/transport"
)

func BenchmarkPipe(b *testing.B) {
	for _, size := range []int{64, 4 << 10, 64 << 10, 1 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			w, r := pipe(b)
			buf := make([]byte, size)
			var wg sync.WaitGroup
			wg.Go(func() { drain(r, 256<<10) })
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			w.Close()
			wg.Wait()
		})
	}
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// drain reads from r with a bufSize buffer until an error.
func drain(r io.Reader, bufSize int) {
	buf := make([]byte, bufSize)
	for {
		if _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// BenchmarkPipePingPong measures a request/response round trip of 64 bytes,
// against net.Pipe as a baseline.
func BenchmarkPipePingPong(b *testing.B) {
	for _, impl := range []struct {
		name string
		pipe func() (net.Conn, net.Conn)
	}{{"transport.Pipe", transport.Pipe}, {"net.Pipe", net.Pipe}} {
		b.Run(impl.name, func(b *testing.B) {
			cli, srv := impl.pipe()
			var wg sync.WaitGroup
			wg.Go(func() {
				buf := make([]byte, 64)
				for {
					if _, err := io.ReadFull(srv, buf); err != nil {
						return
					}
					if _, err := srv.Write(buf); err != nil {
						return
					}
				}
			})
			msg := make([]byte, 64)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cli.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(cli, msg); err != nil {
					b.Fatal(err)
				}
			}
			cli.Close()
			srv.Close()
			wg.Wait()
		})
	}
}
