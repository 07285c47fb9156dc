package cli

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// benchReport is the outcome of procxy bench; -json prints it as is.
type benchReport struct {
	Method       string          `json:"method"`
	Kind         string          `json:"kind"`
	Worker       []string        `json:"worker"`
	PID          int             `json:"pid"`
	RequestBytes int             `json:"request_bytes"`
	Concurrency  int             `json:"concurrency"`
	RateLimit    float64         `json:"rate_limit,omitempty"` // calls/s asked for
	Warmup       int64           `json:"warmup_calls"`
	Calls        int64           `json:"calls"` // that succeeded
	Failed       int64           `json:"failed"`
	Interrupted  bool            `json:"interrupted,omitempty"`
	ElapsedNS    int64           `json:"elapsed_ns"`
	CallsPerSec  float64         `json:"calls_per_second"`
	SentMBps     float64         `json:"sent_MB_per_second"`
	ReceivedMBps float64         `json:"received_MB_per_second"`
	CPU          *cpuPerCall     `json:"cpu_per_call_us,omitempty"` // Linux only
	Latency      latencyStats    `json:"latency_ns"`
	Histogram    []histBucket    `json:"histogram"`
	Errors       []errorCount    `json:"errors,omitempty"`
	LoadBefore   string          `json:"load_average_before,omitempty"` // from /proc/loadavg
	LoadAfter    string          `json:"load_average_after,omitempty"`
	Procxy       string          `json:"procxy"`
	latencies    []time.Duration // sorted, for the chart
}

// cpuPerCall is the CPU time that procxy and the worker spent per call, in
// microseconds, over the measured calls: a measure that other work on the
// machine disturbs much less than latencies.
type cpuPerCall struct {
	Procxy float64 `json:"procxy"`
	Worker float64 `json:"worker"`
}

// latencyStats are in nanoseconds. Percentiles are nearest-rank: pQ is
// the latency at index ⌊Q·n⌋ of the n sorted latencies (the last for
// Q·n ≥ n), as bench/ computes them.
type latencyStats struct {
	Min    int64 `json:"min"`
	Mean   int64 `json:"mean"`
	Stddev int64 `json:"stddev"`
	P50    int64 `json:"p50"`
	P90    int64 `json:"p90"`
	P99    int64 `json:"p99"`
	P999   int64 `json:"p99_9"`
	Max    int64 `json:"max"`
}

// histBucket counts the latencies in [FromNS, ToNS) (the last bucket
// includes ToNS).
type histBucket struct {
	FromNS int64 `json:"from_ns"`
	ToNS   int64 `json:"to_ns"`
	Count  int64 `json:"count"`
}

type errorCount struct {
	Message string `json:"message"`
	Count   int64  `json:"count"`
}

// textBuckets is the number of buckets of the text histogram.
const textBuckets = 12

func newBenchReport(res loadResult) *benchReport {
	r := &benchReport{
		Calls:       int64(len(res.latencies)),
		Failed:      res.failed,
		Interrupted: res.stopped,
		ElapsedNS:   int64(res.elapsed),
		Latency:     stats(res.latencies),
		Histogram:   histogram(res.latencies, textBuckets),
		latencies:   res.latencies,
		Procxy:      buildVersion().Version,
	}
	if secs := res.elapsed.Seconds(); secs > 0 {
		r.CallsPerSec = float64(r.Calls) / secs
		r.ReceivedMBps = float64(res.received) / secs / 1e6
	}
	for msg, n := range res.errors {
		r.Errors = append(r.Errors, errorCount{msg, n})
	}
	slices.SortFunc(r.Errors, func(a, b errorCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Message, b.Message))
	})
	return r
}

// percentile is the nearest-rank percentile q (0…1) of sorted.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func stats(sorted []time.Duration) latencyStats {
	n := len(sorted)
	if n == 0 {
		return latencyStats{}
	}
	var sum float64
	for _, d := range sorted {
		sum += float64(d)
	}
	mean := sum / float64(n)
	var sq float64
	for _, d := range sorted {
		sq += (float64(d) - mean) * (float64(d) - mean)
	}
	p := func(q float64) int64 { return int64(percentile(sorted, q)) }
	return latencyStats{
		Min: int64(sorted[0]), Mean: int64(mean), Stddev: int64(math.Sqrt(sq / float64(n))),
		P50: p(0.50), P90: p(0.90), P99: p(0.99), P999: p(0.999), Max: int64(sorted[n-1]),
	}
}

// histogram counts sorted latencies in nb buckets whose bounds grow by
// equal ratios from the smallest latency to the largest, so that a long
// tail and the bulk both show.
func histogram(sorted []time.Duration, nb int) []histBucket {
	n := len(sorted)
	if n == 0 {
		return nil
	}
	lo, hi := max(float64(sorted[0]), 1), float64(sorted[n-1])
	if hi <= lo {
		return []histBucket{{FromNS: int64(sorted[0]), ToNS: int64(sorted[n-1]), Count: int64(n)}}
	}
	ratio := math.Pow(hi/lo, 1/float64(nb))
	out := make([]histBucket, nb)
	from, at := int64(sorted[0]), 0
	for i := range out {
		to := int64(math.Round(lo * math.Pow(ratio, float64(i+1))))
		end := n
		if i < nb-1 {
			end, _ = slices.BinarySearch(sorted, time.Duration(to))
		} else {
			to = int64(sorted[n-1])
		}
		out[i] = histBucket{FromNS: from, ToNS: to, Count: int64(end - at)}
		from, at = to, end
	}
	return out
}

// writeText prints the report for a person.
func (r *benchReport) writeText(w io.Writer) error {
	var b strings.Builder
	pr := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	pr("Summary:\n")
	pr("  Method:        %s (%s)\n", r.Method, r.Kind)
	pr("  Worker:        %s (pid %d)\n", shellJoin(r.Worker), r.PID)
	pr("  Calls:         %d succeeded, %d failed", r.Calls, r.Failed)
	if r.Warmup > 0 {
		pr(", after %d warm-up calls", r.Warmup)
	}
	if r.Interrupted {
		pr(" (interrupted)")
	}
	pr("\n  Concurrency:   %d", r.Concurrency)
	if r.RateLimit > 0 {
		pr(", rate limit %g calls/s", r.RateLimit)
	}
	pr("\n  Duration:      %s\n", round(time.Duration(r.ElapsedNS)))
	pr("  Throughput:    %.0f calls/s\n", r.CallsPerSec)
	pr("  Data:          %s per request; %.2f MB/s sent, %.2f MB/s received\n", size(r.RequestBytes), r.SentMBps, r.ReceivedMBps)
	if r.CPU != nil {
		pr("  CPU per call:  %.1fµs procxy, %.1fµs worker\n", r.CPU.Procxy, r.CPU.Worker)
	}
	if r.LoadBefore != "" {
		pr("  Load average:  %s before, %s after (1, 5, 15 min)\n", r.LoadBefore, r.LoadAfter)
	}
	if r.Calls > 0 {
		l := r.Latency
		pr("\nLatency:\n")
		for _, x := range []struct {
			name string
			ns   int64
		}{{"min", l.Min}, {"mean", l.Mean}, {"stddev", l.Stddev}, {"p50", l.P50}, {"p90", l.P90}, {"p99", l.P99}, {"p99.9", l.P999}, {"max", l.Max}} {
			pr("  %-7s %s\n", x.name, round(time.Duration(x.ns)))
		}
		pr("\nLatency histogram (bucket bounds grow by equal ratios):\n")
		writeHistogram(&b, r.Histogram)
	}
	if len(r.Errors) > 0 {
		pr("\nErrors:\n")
		for _, e := range r.Errors {
			pr("  %8d  %s\n", e.Count, e.Message)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeHistogram(b *strings.Builder, hs []histBucket) {
	const width = 40
	var most int64
	labels := make([]string, len(hs))
	lw := 0
	for i, h := range hs {
		most = max(most, h.Count)
		labels[i] = fmt.Sprintf("%s – %s", round(time.Duration(h.FromNS)), round(time.Duration(h.ToNS)))
		lw = max(lw, len([]rune(labels[i])))
	}
	cw := len(fmt.Sprint(most))
	for i, h := range hs {
		bar := int(math.Ceil(float64(h.Count) / float64(most) * width))
		pad := strings.Repeat(" ", lw-len([]rune(labels[i])))
		fmt.Fprintf(b, "  %s%s  %*d  %s\n", pad, labels[i], cw, h.Count, strings.Repeat("■", bar))
	}
}

// size writes a byte count for people.
func size(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// loadAverage returns the 1, 5 and 15 minute load averages, or "" where
// /proc/loadavg does not exist.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
