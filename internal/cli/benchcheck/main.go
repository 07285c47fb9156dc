// Command benchcheck checks that procxy bench measures what bench/ does:
// in each round it runs bench/procwire's procwirebench (-quick, one
// round) and then procxy bench with the same calls — the raw-codec
// echoRaw of examples/echoworker and of the Node.js reference worker,
// 16 B one at a time (p50, p99) and 1 KiB with 64 in flight (calls/s),
// and the CPU time per call of the parent (procxy) and of the worker in
// each — and prints both, with their ratio, and the median ratio over the
// rounds. The CPU times are the steadier measure on a busy machine.
//
//	go run ./internal/cli/benchcheck             # 3 rounds, about 2 minutes
//	go run ./internal/cli/benchcheck -rounds 5
//
// Run it from the repository root on a quiet machine: it prints the load
// average before and after. It needs node and interop/node_modules (npm ci
// in interop/), as procwirebench does.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
)

func main() {
	rounds := flag.Int("rounds", 3, "rounds; each runs procwirebench and procxy bench once")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "benchcheck:", err)
		os.Exit(1)
	}
}

// The procwirebench -quick parameters, which procxy bench repeats.
const (
	latWarm, latCalls = 300, 3000 // 16 B, one at a time
	inflight          = 64        // 1 KiB, this many in flight
	tputWarm          = 64 * 100  // untimed calls before the throughput run (procwirebench warms 100 ms)
	tputTime          = "500ms"
)

// measures are the rows of the table, for each pair.
var measures = []string{"16 B p50 (µs)", "16 B p99 (µs)", "1 KiB ×64 calls/s",
	"16 B CPU/call parent (µs)", "16 B CPU/call worker (µs)", "1 KiB ×64 CPU/call parent (µs)", "1 KiB ×64 CPU/call worker (µs)"}

// row is one measure of one pair.
type row struct {
	pair, measure string
	pwb, cli      []float64 // per round
}

func run(ctx context.Context, rounds int) error {
	tmp, err := os.MkdirTemp("", "benchcheck-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	procxyBin, worker := filepath.Join(tmp, "procxy"), filepath.Join(tmp, "echoworker")
	for bin, pkg := range map[string]string{procxyBin: "./cmd/procxy", worker: "./examples/echoworker"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		cmd.Env = append(os.Environ(), "GOFLAGS=") // no -race from the environment
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s (run benchcheck from the repository root): %v\n%s", pkg, err, out)
		}
	}
	b16 := bytes.Repeat([]byte{0x5a}, 16)
	b1k := make([]byte, 1024)
	for i := range b1k {
		b1k[i] = byte(i)
	}
	p16, p1k := filepath.Join(tmp, "16B"), filepath.Join(tmp, "1KiB")
	if err := os.WriteFile(p16, b16, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(p1k, b1k, 0o600); err != nil {
		return err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return err
	}
	script, err := filepath.Abs("interop/nodeworker/worker.mjs")
	if err != nil {
		return err
	}
	workers := map[string][]string{"go-go": {worker}, "go-node": {node, script}}
	pairs := []string{"go-go", "go-node"}

	rows := map[string]*row{}
	add := func(pair, measure string, pwb, cli float64) {
		k := pair + " " + measure
		if rows[k] == nil {
			rows[k] = &row{pair: pair, measure: measure}
		}
		rows[k].pwb = append(rows[k].pwb, pwb)
		rows[k].cli = append(rows[k].cli, cli)
	}
	loadBefore := loadavg()
	for r := range rounds {
		fmt.Fprintf(os.Stderr, "benchcheck: round %d of %d (load average %s)\n", r+1, rounds, loadavg())
		pw, err := procwirebench(ctx, tmp, worker)
		if err != nil {
			return err
		}
		for _, pair := range pairs {
			lat, err := procxyBench(ctx, procxyBin, workers[pair], "-c", "1", "-warmup", fmt.Sprint(latWarm), "-n", fmt.Sprint(latCalls), "echoRaw", "@"+p16)
			if err != nil {
				return err
			}
			tput, err := procxyBench(ctx, procxyBin, workers[pair], "-c", fmt.Sprint(inflight), "-warmup", fmt.Sprint(tputWarm), "-z", tputTime, "echoRaw", "@"+p1k)
			if err != nil {
				return err
			}
			p := pw[pair]
			add(pair, "16 B p50 (µs)", p.P50us, float64(lat.Latency.P50)/1e3)
			add(pair, "16 B p99 (µs)", p.P99us, float64(lat.Latency.P99)/1e3)
			add(pair, "1 KiB ×64 calls/s", p.CallsPerSec, tput.CallsPerSec)
			add(pair, "16 B CPU/call parent (µs)", p.Lat.Parent.CPUus, lat.CPU.Procxy)
			add(pair, "16 B CPU/call worker (µs)", p.Lat.Worker.CPUus, lat.CPU.Worker)
			add(pair, "1 KiB ×64 CPU/call parent (µs)", p.Tput.Parent.CPUus, tput.CPU.Procxy)
			add(pair, "1 KiB ×64 CPU/call worker (µs)", p.Tput.Worker.CPUus, tput.CPU.Worker)
		}
	}

	fmt.Printf("procxy bench vs bench/procwire (procwirebench -quick), %d rounds; load average %s before, %s after\n\n",
		rounds, loadBefore, loadavg())
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "pair\tmeasure\tprocwirebench (median)\tprocxy bench (median)\tratio per round\tmedian ratio\t")
	for _, pair := range pairs {
		for _, m := range measures {
			rw := rows[pair+" "+m]
			var ratios []string
			var rs []float64
			for i := range rw.pwb {
				rs = append(rs, rw.cli[i]/rw.pwb[i])
				ratios = append(ratios, fmt.Sprintf("%.2f", rw.cli[i]/rw.pwb[i]))
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%s\t%.2f\t\n", pair, m, median(rw.pwb), median(rw.cli), strings.Join(ratios, " "), median(rs))
		}
	}
	return tw.Flush()
}

// pwResult is the part of a procwirebench result that is compared.
type pwResult struct {
	P50us       float64 `json:"p50us"`
	P99us       float64 `json:"p99us"`
	CallsPerSec float64 `json:"callsPerSec"`
	Lat, Tput   struct {
		Parent, Worker struct {
			CPUus float64 `json:"cpuUs"`
		}
	}
}

func procwirebench(ctx context.Context, tmp, worker string) (map[string]pwResult, error) {
	out := filepath.Join(tmp, "procwirebench.json")
	cmd := exec.CommandContext(ctx, "go", "run", "./procwire/cmd/procwirebench", "-quick", "-rounds", "1", "-goworker", worker, "-json", out)
	cmd.Dir = "bench"
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	cmd.Stdout = nil // its tables are not needed
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("procwirebench: %v\n%s", err, stderr.Bytes())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	var info struct {
		Results []map[string]pwResult
	}
	if err := json.Unmarshal(b, &info); err != nil || len(info.Results) == 0 {
		return nil, fmt.Errorf("procwirebench -json: %v (%d rounds)", err, len(info.Results))
	}
	return info.Results[0], nil
}

// cliResult is the part of procxy bench -json that is compared.
type cliResult struct {
	CallsPerSec float64 `json:"calls_per_second"`
	Failed      int64   `json:"failed"`
	CPU         struct {
		Procxy, Worker float64
	} `json:"cpu_per_call_us"`
	Latency struct {
		P50, P99 int64
	} `json:"latency_ns"`
}

func procxyBench(ctx context.Context, procxy string, worker []string, args ...string) (cliResult, error) {
	all := append([]string{"bench", "-json", "-progress", "none", "-codec", "raw"}, args...)
	all = append(append(all, "--"), worker...)
	cmd := exec.CommandContext(ctx, procxy, all...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return cliResult{}, fmt.Errorf("procxy %s: %v\n%s", strings.Join(all, " "), err, stderr.Bytes())
	}
	var r cliResult
	if err := json.Unmarshal(out, &r); err != nil || r.Failed > 0 {
		return r, fmt.Errorf("procxy bench -json: %v, %d failed", err, r.Failed)
	}
	return r, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
