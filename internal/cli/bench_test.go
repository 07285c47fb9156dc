package cli_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procxy/procxy/internal/cli"
)

// benchJSON is the part of procxy bench -json the tests read.
type benchJSON struct {
	Method       string  `json:"method"`
	Kind         string  `json:"kind"`
	PID          int     `json:"pid"`
	RequestBytes int     `json:"request_bytes"`
	Concurrency  int     `json:"concurrency"`
	Warmup       int64   `json:"warmup_calls"`
	Calls        int64   `json:"calls"`
	Failed       int64   `json:"failed"`
	Interrupted  bool    `json:"interrupted"`
	ElapsedNS    int64   `json:"elapsed_ns"`
	CallsPerSec  float64 `json:"calls_per_second"`
	ReceivedMBps float64 `json:"received_MB_per_second"`
	CPU          *struct {
		Procxy, Worker float64
	} `json:"cpu_per_call_us"`
	Latency struct {
		Min, Mean, P50, P90, P99, Max int64
		P999                          int64 `json:"p99_9"`
	} `json:"latency_ns"`
	Histogram []struct {
		FromNS int64 `json:"from_ns"`
		ToNS   int64 `json:"to_ns"`
		Count  int64 `json:"count"`
	} `json:"histogram"`
	Errors []struct {
		Message string `json:"message"`
		Count   int64  `json:"count"`
	} `json:"errors"`
	LoadBefore string `json:"load_average_before"`
}

func parseBench(t *testing.T, r result) benchJSON {
	t.Helper()
	var b benchJSON
	if err := json.Unmarshal([]byte(r.stdout), &b); err != nil {
		t.Fatalf("bench -json printed %q: %v (stderr %q, err %v)", r.stdout, err, r.stderr, r.err)
	}
	return b
}

// checkLatencies checks that the summary's numbers are consistent.
func checkLatencies(t *testing.T, b benchJSON) {
	t.Helper()
	l := b.Latency
	if !(0 < l.Min && l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max && l.Min <= l.Mean && l.Mean <= l.Max) {
		t.Errorf("latencies out of order: %+v", l)
	}
	var n int64
	for i, h := range b.Histogram {
		n += h.Count
		if h.FromNS > h.ToNS || (i > 0 && h.FromNS != b.Histogram[i-1].ToNS) {
			t.Errorf("histogram bucket %d is [%d, %d) after %+v", i, h.FromNS, h.ToNS, b.Histogram[max(i-1, 0)])
		}
	}
	if n != b.Calls || b.Histogram[0].FromNS != l.Min || b.Histogram[len(b.Histogram)-1].ToNS != l.Max {
		t.Errorf("histogram %+v counts %d calls from %d to %d ns; want %d calls from min %d to max %d", b.Histogram, n,
			b.Histogram[0].FromNS, b.Histogram[len(b.Histogram)-1].ToNS, b.Calls, l.Min, l.Max)
	}
	if want := float64(b.Calls) / (float64(b.ElapsedNS) / 1e9); b.CallsPerSec < want*0.999 || b.CallsPerSec > want*1.001 {
		t.Errorf("calls_per_second %v, want calls/elapsed = %v", b.CallsPerSec, want)
	}
}

// TestBench: bench against both workers; the summary adds up, and the
// chart is an SVG with the histogram, the percentile marks and the curve.
func TestBench(t *testing.T) {
	for _, w := range bothWorkers(t) {
		t.Run(w.name, func(t *testing.T) {
			svg := filepath.Join(t.TempDir(), "echo.svg")
			r := run(t, "", w, "bench", "-n", "300", "-c", "4", "-warmup", "20", "-json", "-progress", "none", "-chart", svg, "echo", `"hi"`)
			b := parseBench(t, r)
			if r.code != 0 || b.Method != "echo" || b.Kind != "result" || b.Calls != 300 || b.Failed != 0 || b.Concurrency != 4 ||
				b.Warmup != 20 || b.RequestBytes != 3 || b.PID == 0 || len(b.Histogram) != 12 {
				t.Errorf("bench: exit %d (%v), %+v", r.code, r.err, b)
			}
			if b.ReceivedMBps <= 0 || b.LoadBefore == "" {
				t.Errorf("received %v MB/s, load average %q", b.ReceivedMBps, b.LoadBefore)
			}
			if runtime.GOOS == "linux" && (b.CPU == nil || b.CPU.Procxy <= 0 || b.CPU.Worker <= 0) {
				t.Errorf("CPU per call %+v, want both sides' (Linux)", b.CPU)
			}
			checkLatencies(t, b)
			checkSVG(t, svg, b)

			// The same as text, for a person; a stream method, whose call
			// ends with the stream.
			r = run(t, "", w, "bench", "-n", "50", "-progress", "none", "count", `{"n": 5}`)
			for _, want := range []string{
				"Summary:\n  Method:        count (stream)\n  Worker:        " + strings.Join(w.argv, " ") + " (pid ",
				"\n  Calls:         50 succeeded, 0 failed\n  Concurrency:   1\n  Duration:      ",
				"\n  Data:          4 B per request; ",
				"\n  CPU per call:  ",
				"\nLatency:\n  min     ", "\n  p99.9   ",
				"\nLatency histogram (bucket bounds grow by equal ratios):\n",
			} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("bench summary lacks %q:\n%s", want, r.stdout)
				}
			}
			hist := regexp.MustCompile(`(?m)^ +\S+ – \S+ +(\d+)  ■*$`).FindAllStringSubmatch(r.stdout, -1)
			total := 0
			for _, m := range hist {
				n, _ := strconv.Atoi(m[1])
				total += n
			}
			if len(hist) != 12 || total != 50 {
				t.Errorf("text histogram has %d lines counting %d calls, want 12 lines counting 50:\n%s", len(hist), total, r.stdout)
			}
		})
	}
}

// checkSVG parses the chart.
func checkSVG(t *testing.T, file string, b benchJSON) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	var (
		root  string
		texts []string
		paths int
		inTxt bool
	)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", file, err)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = x.Name.Local
				for _, a := range x.Attr {
					if (a.Name.Local == "width" || a.Name.Local == "height") && !strings.HasSuffix(a.Value, "pt") {
						t.Errorf("svg %s=%q", a.Name.Local, a.Value)
					}
				}
			}
			switch x.Name.Local {
			case "path":
				paths++
			case "text":
				inTxt = true
			}
		case xml.CharData:
			if inTxt {
				texts = append(texts, strings.TrimSpace(string(x)))
			}
		case xml.EndElement:
			inTxt = false
		}
	}
	all := strings.Join(texts, "\n")
	dur := func(ns int64) string { return strings.TrimSpace(roundDur(time.Duration(ns))) }
	for _, want := range []string{
		"procxy bench echo: 300 calls, concurrency 4, ",
		"p50 " + dur(b.Latency.P50), "p90 " + dur(b.Latency.P90), "p99 " + dur(b.Latency.P99),
		"latency (log scale)", "calls", "latency by percentile", "percentile", "0%", "90%", "99%",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the chart's text lacks %q; it has:\n%s", want, all)
		}
	}
	if root != "svg" || paths < 40 {
		t.Errorf("chart: root <%s>, %d paths; want <svg> with at least 40 (one per histogram bar)", root, paths)
	}
}

// roundDur is the CLI's rounding: three significant digits.
func roundDur(d time.Duration) string {
	unit := time.Duration(1)
	for d/unit >= 1000 {
		unit *= 10
	}
	return d.Round(unit).String()
}

// TestBenchPNG: a .png chart is a PNG.
func TestBenchPNG(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.png")
	r := run(t, "", goWorker(t), "bench", "-n", "100", "-progress", "none", "-chart", file, "echo", "1")
	if r.code != 0 {
		t.Fatalf("bench: %v\n%s", r.err, r.stderr)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 300 {
		t.Errorf("chart is %v", b)
	}
	r = run(t, "", goWorker(t), "bench", "-n", "10", "-progress", "none", "-chart", filepath.Join(t.TempDir(), "c.gif"), "echo", "1")
	if r.code != cli.ExitFailure || !strings.Contains(r.errLine(), "(use .svg or .png)") {
		t.Errorf("a .gif chart: exit %d, %q", r.code, r.errLine())
	}
}

// TestBenchFailures: failed calls are counted by message and make the
// exit status the remote error's.
func TestBenchFailures(t *testing.T) {
	for _, w := range bothWorkers(t) {
		t.Run(w.name, func(t *testing.T) {
			r := run(t, "", w, "bench", "-json", "-n", "20", "-c", "2", "-progress", "none", "fail", `{"message": "no"}`)
			b := parseBench(t, r)
			if r.code != cli.ExitRemote || b.Calls != 0 || b.Failed != 20 || len(b.Errors) != 1 || b.Errors[0].Count != 20 ||
				!strings.HasSuffix(b.Errors[0].Message, ": no") || !strings.HasPrefix(r.errLine(), "procxy: 20 of 20 calls failed; the first: remote") {
				t.Errorf("bench fail: exit %d, %q, %+v", r.code, r.errLine(), b)
			}
		})
	}
}

// TestBenchLimits: -rate spaces the calls out, -z bounds the run in time.
func TestBenchLimits(t *testing.T) {
	w := goWorker(t)
	b := parseBench(t, run(t, "", w, "bench", "-json", "-progress", "none", "-rate", "1000", "-c", "2", "-n", "41", "echo", "1"))
	if b.Calls != 41 || b.ElapsedNS < 40*int64(time.Millisecond) {
		t.Errorf("-rate 1000 -n 41: %d calls in %v, want 41 in at least 40ms", b.Calls, time.Duration(b.ElapsedNS))
	}
	b = parseBench(t, run(t, "", w, "bench", "-json", "-progress", "none", "-z", "150ms", "-c", "2", "echo", "1"))
	if b.Calls == 0 || b.ElapsedNS < 150*int64(time.Millisecond) {
		t.Errorf("-z 150ms: %d calls in %v", b.Calls, time.Duration(b.ElapsedNS))
	}
	b = parseBench(t, run(t, "", w, "bench", "-json", "-progress", "none", "-z", "1h", "-n", "30", "echo", "1"))
	if b.Calls != 30 {
		t.Errorf("-z 1h -n 30: %d calls", b.Calls)
	}
}

// TestBenchProgress: plain lines when asked (and when stderr is not a
// terminal), and a progress bar.
func TestBenchProgress(t *testing.T) {
	defer cli.SetProgressEvery(time.Millisecond)()
	w := goWorker(t)
	r := run(t, "", w, "bench", "-z", "100ms", "echo", "1") // auto: stderr is not a terminal
	if !regexp.MustCompile(`(?m)^procxy bench: echo: \d+ calls, \d+s of 100ms, \d+ calls/s, 0 failed$`).MatchString(r.stderr) {
		t.Errorf("progress lines: %q", r.stderr)
	}
	r = run(t, "", w, "bench", "-n", "3000", "-progress", "lines", "echo", "1")
	if !regexp.MustCompile(`(?m)^procxy bench: echo: \d+ calls of 3000 \(\d+%\), \d+ calls/s, 0 failed$`).MatchString(r.stderr) {
		t.Errorf("progress lines with -n: %q", r.stderr)
	}
	r = run(t, "", w, "bench", "-n", "3000", "-progress", "bar", "echo", "1")
	if !regexp.MustCompile(`echo +\d+% \|[█ ]+\| \(\d+/3000, \d+ calls/s\)`).MatchString(r.stderr) {
		t.Errorf("progress bar: %q", r.stderr)
	}
}

// TestBenchInterrupt: Ctrl-C stops the run; the summary of what ran is
// printed, and the exit status is 130.
func TestBenchInterrupt(t *testing.T) {
	defer cli.SetProgressEvery(time.Millisecond)()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stderr := &watchWriter{match: regexp.MustCompile(`procxy bench: echo: [1-9]\d* calls`), then: cancel}
	var stdout strings.Builder
	args := []string{"bench", "-json", "-z", "1h", "-progress", "lines", "echo", "1", "--"}
	err := cli.Run(ctx, append(args, goWorker(t).argv...), nil, &stdout, stderr)
	if cli.ExitCode(err) != cli.ExitInterrupted || !strings.HasPrefix(err.Error(), "interrupted: the benchmark was stopped after ") {
		t.Errorf("got %v (exit %d), want interrupted (130)", err, cli.ExitCode(err))
	}
	b := parseBench(t, result{stdout: stdout.String()})
	if !b.Interrupted || b.Calls == 0 || b.Failed != 0 {
		t.Errorf("summary after an interrupt: %+v", b)
	}
}
