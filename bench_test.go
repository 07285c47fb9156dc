package procxy_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/procxy/procxy"
)

// BenchmarkAdd is a proxied method call: two ints in, one int out.
func BenchmarkAdd(b *testing.B) {
	p, err := procxy.New[Calculator](b.Context())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := procxy.Call[int](b.Context(), p, "Add", 2, 3); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSteadyState makes b.N sequential small calls on one proxy after
// a warm-up and reports how much the parent's and the child's resident
// memory and the parent's goroutines grew. Run it as the million-call check:
//
//	go test -run='^$' -bench=SteadyState -benchtime=1000000x .
func BenchmarkSteadyState(b *testing.B) {
	p, err := procxy.New[Calculator](b.Context())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	child := p.Process().Pid
	for i := range 10_000 { // warm up: pools, buffers, maps reach their size
		procxy.Call[int](b.Context(), p, "Add", i, 1)
	}
	runtime.GC()
	goroutines := runtime.NumGoroutine()
	parentRSS, childRSS := vmRSS(b, os.Getpid()), vmRSS(b, child)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if sum, err := procxy.Call[int](b.Context(), p, "Add", i, 1); err != nil || sum != i+1 {
			b.Fatalf("call %d: %d, %v", i, sum, err)
		}
	}
	b.StopTimer()
	runtime.GC()
	dParent, dChild := vmRSS(b, os.Getpid())-parentRSS, vmRSS(b, child)-childRSS
	dG := runtime.NumGoroutine() - goroutines
	b.ReportMetric(float64(dParent)/1024, "parent-rss-growth-KiB")
	b.ReportMetric(float64(dChild)/1024, "child-rss-growth-KiB")
	b.ReportMetric(float64(dG), "goroutine-growth")
	if b.N >= 1_000_000 && (dParent > 2<<20 || dChild > 2<<20 || dG > 0) {
		b.Errorf("after %d calls: parent RSS +%d KiB, child RSS +%d KiB, goroutines %+d", b.N, dParent>>10, dChild>>10, dG)
	}
}

func vmRSS(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
