package harness

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/procxy/procxy"
)

// ArgMemory is what one large []byte argument costs the child of the
// object proxy: procxy.Call[int](ctx, p, "Len", b) with len(b) = Huge.
type ArgMemory struct {
	SharedMemory bool    `json:"shared_memory"`
	Payload      int     `json:"payload_bytes"`
	IdleKiB      float64 `json:"child_idle_rss_kib"` // VmRSS after start and one small call
	PeakKiB      float64 `json:"child_peak_rss_kib"` // VmHWM after the call
	Millis       float64 `json:"call_ms"`
	Error        string  `json:"error,omitempty"`
}

// Ratio is the child's peak RSS above idle, in payloads.
func (m ArgMemory) Ratio() float64 { return (m.PeakKiB - m.IdleKiB) * 1024 / float64(m.Payload) }

// MeasureArgMemory starts an object-proxy child, calls Len with a Huge
// []byte once and reads the child's resident memory before and at its peak.
func MeasureArgMemory(ctx context.Context, shm bool) (res ArgMemory) {
	res = ArgMemory{SharedMemory: shm, Payload: Huge}
	p, err := procxy.New[Calculator](ctx, procxy.SharedMemory(shm))
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer p.Close()
	pid := p.Process().Pid
	if _, err := procxy.Call[int](ctx, p, "Len", []byte{1}); err != nil {
		res.Error = err.Error()
		return res
	}
	if res.IdleKiB, err = procStatusKiB(pid, "VmRSS:"); err != nil {
		res.Error = err.Error()
		return res
	}
	in := Payload(Huge)
	t0 := time.Now()
	n, err := procxy.Call[int](ctx, p, "Len", in)
	res.Millis = float64(time.Since(t0).Microseconds()) / 1e3
	if err == nil && n != len(in) {
		err = fmt.Errorf("Len = %d, want %d", n, len(in))
	}
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if res.PeakKiB, err = procStatusKiB(pid, "VmHWM:"); err != nil {
		res.Error = err.Error()
	}
	return res
}

// procStatusKiB reads one "Name: N kB" line of /proc/<pid>/status.
func procStatusKiB(pid int, name string) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return strconv.ParseFloat(f[0], 64)
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", name, pid)
}
