package rpc_test

import (
	"sync"
	"testing"

	"github.com/procxy/procxy/rpc"
)

func BenchmarkCall(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr+"/raw16", func(b *testing.B) {
			cli, _ := pair(b, tr, rpc.Options{Handlers: newService().mux()}, rpc.Options{})
			in := make([]byte, 16)
			var out []byte
			b.SetBytes(16)
			b.ReportAllocs()
			for b.Loop() {
				if err := cli.Call(b.Context(), echoRaw, in, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tr+"/add", func(b *testing.B) {
			cli, _ := pair(b, tr, rpc.Options{Handlers: newService().mux()}, rpc.Options{})
			var sum int
			b.ReportAllocs()
			for b.Loop() {
				if err := cli.Call(b.Context(), add, addArgs{2, 3}, &sum); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCallParallel64(b *testing.B) {
	cli, _ := pair(b, "unix", rpc.Options{Handlers: newService().mux()}, rpc.Options{})
	in := make([]byte, 1024)
	b.SetBytes(1024)
	b.ReportAllocs()
	b.SetParallelism(32) // 64 goroutines on 2 cores
	var once sync.Once
	b.RunParallel(func(pb *testing.PB) {
		var out []byte
		for pb.Next() {
			if err := cli.Call(b.Context(), echoRaw, in, &out); err != nil {
				once.Do(func() { b.Error(err) })
				return
			}
		}
	})
}
