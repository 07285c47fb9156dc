// Command rpcbench measures procxy's rpc against a raw-socket floor,
// net/rpc, gRPC and go-plugin, each echoing bytes between this process and
// a child process (this binary re-executed), and prints one table.
//
//	go run ./cmd/rpcbench [-quick] [-json results.json] [-only REGEXP]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/procxy/procxy/bench/internal/harness"
)

func main() {
	harness.MaybeChild() // in the child: serve and exit

	// The first interrupt stops after the contender being measured; a
	// second one kills (the children exit when our end of their stdin closes).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "rpcbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rpcbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "short run: a few thousand calls per contender")
	jsonPath := fs.String("json", "", "also write the results as JSON to this file")
	rounds := fs.Int("rounds", 0, "run every contender this many times in rotation and print medians (default 3, 1 with -quick)")
	only := fs.String("only", "", "run only contenders whose name/transport matches this regexp (the floor always runs)")
	cpuProfile := fs.String("cpuprofile", "", "write this process's CPU profile to a file (children: set "+harness.EnvChildProfile+"=prefix)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	cfg := harness.DefaultConfig()
	if *quick {
		cfg = harness.QuickConfig()
	}
	if *rounds > 0 {
		cfg.Rounds = *rounds
	}
	var contenders []harness.Contender
	for _, c := range harness.Contenders() {
		if *only == "" || c.Name == "floor" {
			contenders = append(contenders, c)
			continue
		}
		match, err := regexp.MatchString(*only, c.Label())
		if err != nil {
			return fmt.Errorf("-only: %w", err)
		}
		if match {
			contenders = append(contenders, c)
		}
	}

	loadBefore := loadAverage()
	var failed []string                               // "label: error" of every failed run
	runs := make([][]harness.Result, len(contenders)) // per contender, per round
	for round := 1; round <= cfg.Rounds; round++ {
		for i, c := range contenders {
			if err := ctx.Err(); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "rpcbench: round %d/%d %-24s", round, cfg.Rounds, c.Label())
			t0 := time.Now()
			r := harness.Run(ctx, c, cfg)
			fmt.Fprintf(stderr, " %5.1fs %s\n", time.Since(t0).Seconds(), r.Error)
			runs[i] = append(runs[i], r)
			if r.Error != "" {
				failed = append(failed, c.Label()+": "+r.Error)
			}
			runtime.GC()
		}
	}
	results := make([]harness.Result, len(contenders))
	for i := range runs {
		results[i] = harness.Median(runs[i])
	}

	fmt.Fprintf(stdout, "%s %s/%s, %d CPUs; median of %d round(s), each: %d timed calls per latency run, %d in flight for %s, %d × 10 MiB\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(),
		cfg.Rounds, cfg.Calls, cfg.InFlight, cfg.ParallelTime, cfg.BigCalls)
	if loadBefore != "" {
		// Other work on the machine moves these numbers, the floor's least.
		fmt.Fprintf(stdout, "1-minute load average: %s before, %s after\n\n", loadBefore, loadAverage())
	}
	printTable(stdout, results)
	printAdd(stdout, results)

	if *jsonPath != "" {
		out, err := json.MarshalIndent(map[string]any{
			"go": runtime.Version(), "goos": runtime.GOOS, "goarch": runtime.GOARCH,
			"cpus": runtime.NumCPU(), "config": cfg, "results": results, "rounds": runs,
		}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonPath, append(out, '\n'), 0o644); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d run(s) failed: %s", len(failed), strings.Join(failed, "; "))
	}
	return nil
}

// loadAverage returns the 1-minute load average, or "" where there is no /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// column is one metric: its header, value, formatting, and whether the
// cell also shows the ratio to the floor.
type column struct {
	head   string
	val    func(harness.Result) float64
	format func(float64) string
	ratio  bool
}

func dur(v float64) string {
	if v >= 1e6 {
		return fmt.Sprintf("%.2fms", v/1e6)
	}
	return fmt.Sprintf("%.1fµs", v/1e3)
}

var columns = []column{
	{"p50 16B", func(r harness.Result) float64 { return float64(r.P50Small) }, dur, true},
	{"p99 16B", func(r harness.Result) float64 { return float64(r.P99Small) }, dur, true},
	{"p50 1KiB", func(r harness.Result) float64 { return float64(r.P50Mid) }, dur, true},
	{"p99 1KiB", func(r harness.Result) float64 { return float64(r.P99Mid) }, dur, true},
	{"1KiB×64 calls/s", func(r harness.Result) float64 { return r.ParCallsPerSec },
		func(v float64) string { return fmt.Sprintf("%.0f", v) }, true},
	{"1KiB×64 MB/s", func(r harness.Result) float64 { return r.ParMBps },
		func(v float64) string { return fmt.Sprintf("%.1f", v) }, true},
	{"10MiB GB/s", func(r harness.Result) float64 { return r.BigGBps },
		func(v float64) string { return fmt.Sprintf("%.2f", v) }, true},
	{"allocs/call 16B", func(r harness.Result) float64 { return r.AllocsPerCall },
		func(v float64) string { return fmt.Sprintf("%.1f", v) }, false},
}

// printTable prints a Markdown table; each cell is "value (ratio to the
// floor×)". Latency ratios are contender/floor (higher is slower);
// throughput ratios are contender/floor too (lower is slower).
func printTable(w io.Writer, results []harness.Result) {
	var floor *harness.Result
	for i := range results {
		if results[i].Contender == "floor" && results[i].Error == "" {
			floor = &results[i]
		}
	}
	head := []string{"contender", "transport"}
	for _, c := range columns {
		head = append(head, c.head)
	}
	rows := [][]string{head}
	for _, r := range results {
		row := []string{r.Contender, r.Transport}
		for _, c := range columns {
			v := c.val(r)
			cell := "—"
			if v != 0 {
				cell = c.format(v)
				if c.ratio && floor != nil && c.val(*floor) != 0 {
					cell += fmt.Sprintf(" (%.2f×)", v/c.val(*floor))
				}
			} else if c.head == "allocs/call 16B" && r.Error == "" {
				cell = "0"
			}
			row = append(row, cell)
		}
		if r.Error != "" {
			row[0] += " ⚠"
		}
		rows = append(rows, row)
	}
	writeMarkdown(w, rows)
	for _, r := range results {
		if r.Error != "" {
			fmt.Fprintf(w, "\n⚠ %s/%s failed: %s", r.Contender, r.Transport, r.Error)
		}
	}
	fmt.Fprintln(w, "\nratios are contender ÷ floor for every column: above 1 is slower for latencies, below 1 is slower for throughputs;")
	fmt.Fprintln(w, "MB/s and GB/s count payload bytes one way (the same bytes come back); allocs are client-process mallocs per 16 B call.")
}

func printAdd(w io.Writer, results []harness.Result) {
	rows := [][]string{{"procxy add (msgpack [2]int → int)", "transport", "p50", "p99", "allocs/call"}}
	for _, r := range results {
		if r.AddP50 == 0 {
			continue
		}
		rows = append(rows, []string{r.Contender, r.Transport, dur(float64(r.AddP50)), dur(float64(r.AddP99)),
			fmt.Sprintf("%.1f", r.AddAllocs)})
	}
	if len(rows) > 1 {
		fmt.Fprintln(w)
		writeMarkdown(w, rows)
	}
}

func writeMarkdown(w io.Writer, rows [][]string) {
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], len([]rune(cell)))
		}
	}
	line := func(row []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, cell := range row {
			fmt.Fprintf(&b, " %s%s |", cell, strings.Repeat(" ", width[i]-len([]rune(cell))))
		}
		fmt.Fprintln(w, b.String())
	}
	line(rows[0])
	sep := make([]string, len(width))
	for i, n := range width {
		sep[i] = strings.Repeat("-", n)
	}
	line(sep)
	for _, row := range rows[1:] {
		line(row)
	}
}
