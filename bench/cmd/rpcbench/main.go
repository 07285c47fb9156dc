// Command rpcbench measures procxy's rpc against a raw-socket floor,
// net/rpc, gRPC and go-plugin, each echoing bytes between this process and
// a child process (this binary re-executed), and prints one table. A second
// section measures a proxied method call, Add(a, b int) int, through
// procxy's object proxy (procxy.New and procxy.Call), procxy's rpc layer
// and go-plugin, against the same floor.
//
//	go run ./cmd/rpcbench [-quick] [-json results.json] [-only REGEXP] [-section all|echo|call]
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
	"slices"
	"strings"
	"time"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/bench/internal/harness"
)

func main() {
	// In a child started by procxy.New (PROCXY_CHILD is set): serve the
	// Calculator and never return. Everywhere else it returns at once.
	procxy.Main()
	// In a child started by the harness or go-plugin (PROCXYBENCH_ROLE is
	// set): serve that role and exit. A procxy child never gets here, and
	// the harness's children do not have PROCXY_CHILD.
	harness.MaybeChild()

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
	section := fs.String("section", "all", "which section to run: echo (the echo table), call (the proxied Add call), memory (a 64 MiB argument), or all")
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
	runEcho, runCall := *section == "all" || *section == "echo", *section == "all" || *section == "call"
	runMemory := *section == "all" || *section == "memory"
	if !runEcho && !runCall && !runMemory {
		return fmt.Errorf("-section %q: want all, echo, call or memory", *section)
	}
	var onlyRE *regexp.Regexp
	if *only != "" {
		var err error
		if onlyRE, err = regexp.Compile(*only); err != nil {
			return fmt.Errorf("-only: %w", err)
		}
	}
	keep := func(name, label string) bool { return onlyRE == nil || name == "floor" || onlyRE.MatchString(label) }
	var contenders []harness.Contender
	if runEcho {
		for _, c := range harness.Contenders() {
			if keep(c.Name, c.Label()) {
				contenders = append(contenders, c)
			}
		}
	}
	var callContenders []harness.CallContender
	if runCall {
		for _, c := range harness.CallContenders() {
			if keep(c.Name, c.Label()) {
				callContenders = append(callContenders, c)
			}
		}
	}

	loadBefore := harness.LoadAverage()
	var failed []string // "label: error" of every failed run
	runs, err := rotate(ctx, stderr, cfg.Rounds, "", contenders, harness.Contender.Label,
		func(c harness.Contender) harness.Result { return harness.Run(ctx, c, cfg) },
		func(r harness.Result) string { return r.Error }, &failed)
	if err != nil {
		return err
	}
	callRuns, err := rotate(ctx, stderr, cfg.Rounds, "call ", callContenders, harness.CallContender.Label,
		func(c harness.CallContender) harness.CallResult { return harness.RunCall(ctx, c, cfg) },
		func(r harness.CallResult) string { return r.Error }, &failed)
	if err != nil {
		return err
	}
	var memory []harness.ArgMemory
	if runMemory {
		for _, shm := range []bool{false, true} {
			for range cfg.Rounds {
				fmt.Fprintf(stderr, "rpcbench: memory, 64 MiB argument, shared memory %v\n", shm)
				memory = append(memory, harness.MeasureArgMemory(ctx, shm))
			}
		}
	}
	results := make([]harness.Result, len(runs))
	for i := range runs {
		results[i] = harness.Median(runs[i])
	}
	callResults := make([]harness.CallResult, len(callRuns))
	for i := range callRuns {
		callResults[i] = harness.MedianCall(callRuns[i])
	}

	fmt.Fprintf(stdout, "%s %s/%s, %d CPUs; median of %d round(s)\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cfg.Rounds)
	if loadBefore != "" {
		// Other work on the machine moves these numbers, the floor's least.
		fmt.Fprintf(stdout, "load average (1, 5, 15 min): %s before, %s after\n\n", loadBefore, harness.LoadAverage())
	}
	if runEcho {
		fmt.Fprintf(stdout, "## Echo (each round: %d timed calls per latency run, %d in flight for %s, %d × 10 MiB, %d × 64 MiB)\n\n",
			cfg.Calls, cfg.InFlight, cfg.ParallelTime, cfg.BigCalls, cfg.HugeCalls)
		printTable(stdout, results)
		printAdd(stdout, results)
	}
	if runCall {
		if runEcho {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "## Proxied call: Add(a, b int) int (each round: %d sequential calls after %d untimed)\n\n",
			cfg.CallCalls, cfg.CallWarmup)
		printCall(stdout, callResults)
	}

	if runMemory {
		fmt.Fprintf(stdout, "\n## A 64 MiB []byte argument: procxy.Call[int](ctx, p, \"Len\", b), the child's resident memory\n\n")
		printMemory(stdout, memory)
	}

	if *jsonPath != "" {
		out, err := json.MarshalIndent(map[string]any{
			"go": runtime.Version(), "goos": runtime.GOOS, "goarch": runtime.GOARCH,
			"cpus": runtime.NumCPU(), "config": cfg, "results": results, "rounds": runs,
			"call_results": callResults, "call_rounds": callRuns, "memory": memory,
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

// rotate runs every contender rounds times, in rotation (each run with a
// fresh child), and returns each contender's runs. Failed runs are added to
// failed as "label: error".
func rotate[C, R any](ctx context.Context, stderr io.Writer, rounds int, prefix string, contenders []C,
	label func(C) string, run func(C) R, errOf func(R) string, failed *[]string) ([][]R, error) {
	runs := make([][]R, len(contenders)) // per contender, per round
	for round := 1; round <= rounds; round++ {
		for i, c := range contenders {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			fmt.Fprintf(stderr, "rpcbench: round %d/%d %-44s", round, rounds, prefix+label(c))
			t0 := time.Now()
			r := run(c)
			fmt.Fprintf(stderr, " %5.1fs %s\n", time.Since(t0).Seconds(), errOf(r))
			runs[i] = append(runs[i], r)
			if e := errOf(r); e != "" {
				*failed = append(*failed, prefix+label(c)+": "+e)
			}
			runtime.GC()
		}
	}
	return runs, nil
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
	{"64MiB GB/s", func(r harness.Result) float64 { return r.HugeGBps },
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
	printCost(w, results)
	printTargets(w, results)
}

// printCost prints what one 16 B call cost each process: load-independent
// measures of the work a round trip does.
func printCost(w io.Writer, results []harness.Result) {
	num := func(v float64, f string) string {
		if v < 0 {
			return "—"
		}
		return fmt.Sprintf(f, v)
	}
	rows := [][]string{{"per 16 B call", "transport", "CPU µs parent", "CPU µs child", "vol. switches parent", "vol. switches child"}}
	for _, r := range results {
		if r.Error != "" {
			continue
		}
		rows = append(rows, []string{r.Contender, r.Transport, num(r.ParentCPU16/1e3, "%.1f"), num(r.ChildCPU16/1e3, "%.1f"),
			num(r.ParentCS16, "%.2f"), num(r.ChildCS16, "%.2f")})
	}
	fmt.Fprintln(w)
	writeMarkdown(w, rows)
	fmt.Fprintln(w, "\nover the timed 16 B calls: CPU time (parent: getrusage, every thread; child: /proc, 10 ms ticks) and voluntary")
	fmt.Fprintln(w, "context switches (parent: getrusage; child: its live threads) per call; each switch is a wake-up after a wait.")
}

// The rows the targets name.
const (
	rowRPC    = "procxy"
	rowObject = "procxy object"
	rowHost   = "procxy host→worker"
)

// rivals are the contenders every procxy row must beat on every column.
var rivals = []string{"net/rpc", "ttrpc", "drpc", "grpc", "go-plugin/netrpc", "go-plugin/grpc"}

// printTargets says which of the data-path targets this run met.
func printTargets(w io.Writer, results []harness.Result) {
	var floor *harness.Result
	for i := range results {
		if results[i].Contender == "floor" && results[i].Error == "" {
			floor = &results[i]
		}
	}
	if floor == nil {
		return
	}
	var lines []string
	check := func(what string, got, want float64, atMost bool) {
		if got == 0 {
			return
		}
		ok := got >= want
		cmp := "≥"
		if atMost {
			ok, cmp = got <= want, "≤"
		}
		verdict := "met"
		if !ok {
			verdict = "MISSED"
		}
		lines = append(lines, fmt.Sprintf("%s %s %.1f×: %.2f× — %s", what, cmp, want, got, verdict))
	}
	ratio := func(v, f float64) float64 {
		if v == 0 || f == 0 {
			return 0
		}
		return v / f
	}
	for _, r := range results {
		if r.Error != "" {
			continue
		}
		l := r.Contender + "/" + r.Transport
		switch r.Contender {
		case rowRPC:
			check(l+" p50 16B", ratio(float64(r.P50Small), float64(floor.P50Small)), 1.3, true)
			check(l+" p50 1KiB", ratio(float64(r.P50Mid), float64(floor.P50Mid)), 1.3, true)
			check(l+" p99 16B", ratio(float64(r.P99Small), float64(floor.P99Small)), 1.5, true)
			check(l+" p99 1KiB", ratio(float64(r.P99Mid), float64(floor.P99Mid)), 1.5, true)
			check(l+" 1KiB×64", ratio(r.ParCallsPerSec, floor.ParCallsPerSec), 1.0, false)
			check(l+" 10MiB", ratio(r.BigGBps, floor.BigGBps), 0.8, false)
		case rowObject:
			check(l+" 1KiB×64", ratio(r.ParCallsPerSec, floor.ParCallsPerSec), 0.8, false)
			check(l+" 10MiB", ratio(r.BigGBps, floor.BigGBps), 0.6, false)
		case rowHost:
			check(l+" 1KiB×64", ratio(r.ParCallsPerSec, floor.ParCallsPerSec), 0.8, false)
		}
		if strings.Contains(r.Contender, "shm") {
			check(l+" 64MiB", ratio(r.HugeGBps, floor.HugeGBps), 2.0, false)
		}
	}
	// Ahead of every rival on every column, at every level.
	for _, r := range results {
		if r.Error != "" || !strings.HasPrefix(r.Contender, "procxy") {
			continue
		}
		var behind []string
		for _, o := range results {
			if o.Error != "" || !slices.Contains(rivals, o.Contender) {
				continue
			}
			for _, c := range columns {
				if !c.ratio {
					continue
				}
				mine, theirs := c.val(r), c.val(o)
				if mine == 0 || theirs == 0 {
					continue
				}
				lower := strings.HasPrefix(c.head, "p")
				if (lower && mine > theirs) || (!lower && mine < theirs) {
					behind = append(behind, o.Contender+" "+c.head)
				}
			}
		}
		verdict := "met"
		if len(behind) > 0 {
			verdict = "MISSED: behind " + strings.Join(behind, ", ")
		}
		lines = append(lines, fmt.Sprintf("%s/%s ahead of %s on every column — %s", r.Contender, r.Transport, strings.Join(rivals, ", "), verdict))
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "\ntargets (issue 10), from this run's medians:")
		for _, l := range lines {
			fmt.Fprintln(w, "- "+l)
		}
	}
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

// targetContender is the call-section row held to p50 ≤ 1.5× the floor.
const targetContender = "procxy object Call"

// printCall prints the call section: p50 and p99 with their ratio to the
// floor's, and client allocations per call.
func printCall(w io.Writer, results []harness.CallResult) {
	var floor *harness.CallResult
	for i := range results {
		if results[i].Contender == "floor" && results[i].Error == "" {
			floor = &results[i]
		}
	}
	cell := func(v, f int64) string {
		if v == 0 {
			return "—"
		}
		s := dur(float64(v))
		if floor != nil && f != 0 {
			s += fmt.Sprintf(" (%.2f×)", float64(v)/float64(f))
		}
		return s
	}
	cpu := func(v int64) string {
		if v <= 0 {
			return "—"
		}
		return dur(float64(v))
	}
	rows := [][]string{{"Add(a, b int) int", "transport", "p50", "p99", "p10", "allocs/call", "CPU/call parent", "CPU/call child", "CPU/call both"}}
	for _, r := range results {
		var fp10, fp50, fp99, fcpu int64
		if floor != nil {
			fp10, fp50, fp99, fcpu = floor.P10, floor.P50, floor.P99, floor.ParentCPU+floor.ChildCPU
		}
		name, allocs := r.Contender, fmt.Sprintf("%.1f", r.Allocs)
		if r.Error != "" {
			name += " ⚠"
			if r.P50 == 0 {
				allocs = "—"
			}
		}
		both := "—"
		if r.ParentCPU > 0 && r.ChildCPU > 0 {
			both = cell(r.ParentCPU+r.ChildCPU, fcpu)
		}
		rows = append(rows, []string{name, r.Transport, cell(r.P50, fp50), cell(r.P99, fp99), cell(r.P10, fp10), allocs,
			cpu(r.ParentCPU), cpu(r.ChildCPU), both})
	}
	writeMarkdown(w, rows)
	for _, r := range results {
		if r.Error != "" {
			fmt.Fprintf(w, "\n⚠ %s/%s failed: %s", r.Contender, r.Transport, r.Error)
		}
	}
	fmt.Fprintln(w, "\nratios are contender ÷ floor (the floor is a 16-byte echo: two int64s each way); p10 is the least disturbed by other load;")
	fmt.Fprintln(w, "allocs are client-process mallocs per call; CPU/call is user+system time over the timed calls ÷ calls, for the whole")
	fmt.Fprintln(w, "parent process and for the child (/proc, 10 ms ticks).")
	for _, r := range results {
		if r.Contender == targetContender && r.Error == "" && floor != nil && floor.P50 > 0 {
			verdict := "met"
			if float64(r.P50) > 1.5*float64(floor.P50) {
				verdict = "MISSED"
			}
			fmt.Fprintf(w, "target %s p50 ≤ 1.5× the floor's: %.2f× — %s\n", targetContender, float64(r.P50)/float64(floor.P50), verdict)
			verdict = "met"
			if r.Allocs > 3 {
				verdict = "MISSED"
			}
			fmt.Fprintf(w, "target %s ≤ 3 allocations per call in the parent: %.1f — %s\n", targetContender, r.Allocs, verdict)
		}
	}
}

// printMemory prints each memory measurement and whether the child's peak
// stayed within 2.5 payloads above its idle resident memory.
func printMemory(w io.Writer, runs []harness.ArgMemory) {
	rows := [][]string{{"shared memory", "call", "child idle RSS", "child peak RSS", "peak − idle", "target ≤ 2.5×"}}
	for _, m := range runs {
		if m.Error != "" {
			rows = append(rows, []string{fmt.Sprint(m.SharedMemory), "⚠ " + m.Error, "", "", "", ""})
			continue
		}
		verdict := "met"
		if m.Ratio() > 2.5 {
			verdict = "MISSED"
		}
		rows = append(rows, []string{fmt.Sprint(m.SharedMemory), fmt.Sprintf("%.1f ms", m.Millis),
			fmt.Sprintf("%.1f MiB", m.IdleKiB/1024), fmt.Sprintf("%.1f MiB", m.PeakKiB/1024),
			fmt.Sprintf("%.2f× the payload", m.Ratio()), verdict})
	}
	writeMarkdown(w, rows)
	fmt.Fprintln(w, "\nidle: VmRSS after the start and one small call; peak: VmHWM after the call (both /proc/<pid>/status of the child).")
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
