package ipc_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/procxy/procxy/ipc"
)

func BenchmarkPubSub(b *testing.B) {
	for _, size := range []int{16, 16 << 10} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			s := newServer(b)
			pub, sub := dial(b, s), dial(b, s, ipc.PendingLimits(1<<20, 1<<30))
			var got atomic.Int64
			done := make(chan struct{})
			progress := make(chan struct{}, 1)
			n := int64(b.N)
			sub.Subscribe("p", func(*ipc.Msg) {
				v := got.Add(1)
				if v%512 == 0 {
					select {
					case progress <- struct{}{}:
					default:
					}
				}
				if v == n {
					close(done)
				}
			})
			sub.Flush(context.Background())
			data := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := range b.N {
				if err := pub.Publish("p", data); err != nil {
					b.Fatal(err)
				}
				for int64(i)-got.Load() > 1024 { // stay below the slow-consumer limits
					select {
					case <-progress:
					case <-done:
					}
				}
			}
			<-done
		})
	}
}

func BenchmarkRequest(b *testing.B) {
	s := newServer(b)
	c := dial(b, s)
	s.Conn().Subscribe("echo", func(m *ipc.Msg) { m.Respond(m.Data) })
	data := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Request(context.Background(), "echo", data); err != nil {
			b.Fatal(err)
		}
	}
}
