package harness

import (
	"bytes"
	"runtime"
	"sync"
	"testing"

	"github.com/procxy/procxy"
	"go.uber.org/goleak"
)

// TestMain lets the test binary serve as its own child process (procxy's
// object child first, then the harness's roles), and checks that the
// parent leaks no goroutine.
func TestMain(m *testing.M) {
	procxy.Main()
	MaybeChild()
	goleak.VerifyTestMain(m)
}

// TestEcho checks every contender end to end once per payload size.
func TestEcho(t *testing.T) {
	for _, c := range Contenders() {
		t.Run(c.Label(), func(t *testing.T) {
			cli := startClient(t, c.Start)
			for _, size := range []int{0, Small, Mid, 1 << 20} {
				in := Payload(size)
				out, err := cli.Echo(t.Context(), in, nil)
				if err != nil {
					t.Fatalf("%d bytes: %v", size, err)
				}
				if !bytes.Equal(out, in) {
					t.Fatalf("%d bytes: echo differs", size)
				}
			}
			if a, ok := cli.(Adder); ok {
				if sum, err := a.Add(t.Context(), 2, 3); err != nil || sum != 5 {
					t.Fatalf("Add(2, 3) = %d, %v", sum, err)
				}
			}
		})
	}
}

// TestCall checks every contender of the call section once.
func TestCall(t *testing.T) {
	for _, c := range CallContenders() {
		t.Run(c.Label(), func(t *testing.T) {
			cli := startClient(t, c.Start)
			for _, ab := range [][2]int{{2, 3}, {0, 0}, {-7, 1 << 40}} {
				if sum, err := cli.Add(t.Context(), ab[0], ab[1]); err != nil || sum != ab[0]+ab[1] {
					t.Fatalf("Add(%d, %d) = %d, %v", ab[0], ab[1], sum, err)
				}
			}
		})
	}
}

// startClient starts a contender's client and closes it at the end of tb.
func startClient[C interface{ Close() error }](tb testing.TB, startFn func() (C, error)) C {
	tb.Helper()
	cli, err := startFn()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := cli.Close(); err != nil {
			tb.Error(err)
		}
	})
	return cli
}

// BenchmarkCall: the call section's contenders, sequential Add calls
// (go test -run='^$' -bench=Call ./...).
func BenchmarkCall(b *testing.B) {
	for _, c := range CallContenders() {
		b.Run(c.Label(), func(b *testing.B) {
			cli := startClient(b, c.Start)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cli.Add(b.Context(), 2, 3); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEcho: go test -run='^$' -bench=. ./... (one child per contender).
// cmd/rpcbench adds percentiles and ratios to the floor.
func BenchmarkEcho(b *testing.B) {
	for _, c := range Contenders() {
		b.Run(c.Name+"/"+c.Transport, func(b *testing.B) {
			cli := startClient(b, c.Start)
			for _, size := range []struct {
				name string
				n    int
			}{{"16B", Small}, {"1KiB", Mid}, {"10MiB", Big}} {
				b.Run(size.name, func(b *testing.B) {
					in, out := Payload(size.n), make([]byte, 0, size.n)
					var err error
					b.SetBytes(int64(size.n))
					b.ReportAllocs()
					for b.Loop() {
						if out, err = cli.Echo(b.Context(), in, out); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			b.Run("1KiBx64", func(b *testing.B) {
				b.SetBytes(Mid)
				b.ReportAllocs()
				b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0))) // 64 callers on 1, 2, 4… cores
				var once sync.Once
				b.RunParallel(func(pb *testing.PB) {
					in, out := Payload(Mid), make([]byte, 0, Mid)
					var err error
					for pb.Next() {
						if out, err = cli.Echo(b.Context(), in, out); err != nil {
							once.Do(func() { b.Error(err) })
							return
						}
					}
				})
			})
			if a, ok := cli.(Adder); ok {
				b.Run("add", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if _, err := a.Add(b.Context(), 2, 3); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
