//go:build linux

package childproc_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/procxy/procxy/childproc"
)

// BenchmarkChannel measures IPC message throughput: b.N messages are sent
// while the echoes are received, so the pipeline stays full. "inproc" is
// two Channels over a socketpair in this process, "go-child" the test
// binary as a Go child (Parent), "node-child" testdata/child.cjs.
// A message's bytes count once each way.
func BenchmarkChannel(b *testing.B) {
	for _, size := range []int{64, 4096} {
		payload := strings.Repeat("x", size-2) // a JSON string of size bytes
		for _, peer := range []string{"inproc", "go-child", "node-child"} {
			b.Run(peer+"/"+itoa(size)+"B", func(b *testing.B) {
				ch := benchPeer(b, peer)
				if err := ch.Send(b.Context(), "warm-up"); err != nil { // the peer is up and echoing
					b.Fatal(err)
				}
				<-ch.Messages()
				b.SetBytes(int64(2 * size))
				b.ReportAllocs()
				ctx := b.Context()
				errc := make(chan error, 1)
				b.ResetTimer()
				go func() {
					for range b.N {
						if err := ch.Send(ctx, payload); err != nil {
							errc <- err
							return
						}
					}
					errc <- nil
				}()
				for i := range b.N {
					if _, ok := <-ch.Messages(); !ok {
						b.Fatalf("channel closed after %d echoes: %v", i, ch.Err())
					}
				}
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

// benchPeer returns a channel whose peer echoes every message.
func benchPeer(b *testing.B, peer string) *childproc.Channel {
	b.Helper()
	switch peer {
	case "inproc":
		ch, echo := channelPair(b, 0)
		var wg sync.WaitGroup
		wg.Go(func() {
			for m := range echo.Messages() {
				if echo.Send(b.Context(), m) != nil {
					return
				}
			}
		})
		b.Cleanup(func() { ch.Disconnect(); echo.Disconnect(); wg.Wait() })
		return ch
	case "go-child":
		c, err := childproc.Spawn(b.Context(), osArgs0(), nil, helperOpts("echo", childproc.Options{IPC: true, Stdin: childproc.Ignore()}))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Channel().Disconnect(); <-c.Done() })
		<-c.Channel().Messages() // hello
		return c.Channel()
	default:
		requireNode(b)
		c, err := childproc.Fork(b.Context(), "testdata/child.cjs", []string{"echo"}, childproc.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Channel().Disconnect(); <-c.Done() })
		return c.Channel()
	}
}
