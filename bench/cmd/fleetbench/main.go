// Command fleetbench measures procxy objects and functions served by
// worker processes (procxy.Serve) through a message bus: per-call latency
// of a procxy Remote on NATS next to a bare nats.go request with the same
// payload, the ipc API on NATS, a Remote on the ipc server and a local
// child's object proxy, with the raw Unix-socket floor; then calls/s of
// concurrent callers against 1, 2 and 4 workers behind one queue group.
// Every party is its own process.
//
//	go run ./cmd/fleetbench [-quick] [-rounds N]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/bench/internal/harness"
	"github.com/procxy/procxy/bench/internal/ipcbench"
)

func main() {
	procxy.Main() // the object proxy's child
	harness.MaybeChild()
	ipcbench.MaybeChild()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "fleetbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("fleetbench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "a short smoke run")
	rounds := fs.Int("rounds", 0, "rounds (default 3, 1 with -quick); medians are reported")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := ipcbench.DefaultConfig()
	if *quick {
		cfg = ipcbench.QuickConfig()
	}
	if *rounds > 0 {
		cfg.Rounds = *rounds
	}
	cfg.Requesters = 32
	load0 := harness.LoadAverage()
	var floor50, floor99 []time.Duration
	lat := map[string][2][]time.Duration{}
	var names []string
	scale := map[int][]ipcbench.ScaleRow{}
	workers := []int{1, 2, 4}
	for r := range cfg.Rounds {
		fmt.Fprintf(os.Stderr, "round %d/%d\n", r+1, cfg.Rounds)
		fl, err := ipcbench.Floor(ctx, cfg)
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		floor50, floor99 = append(floor50, fl.P50), append(floor99, fl.P99)
		rows, err := ipcbench.FleetLatency(ctx, cfg)
		if err != nil {
			return err
		}
		for _, row := range rows {
			if _, ok := lat[row.Name]; !ok {
				names = append(names, row.Name)
			}
			v := lat[row.Name]
			v[0], v[1] = append(v[0], row.P50), append(v[1], row.P99)
			lat[row.Name] = v
		}
		srows, err := ipcbench.FleetScale(ctx, cfg, workers)
		if err != nil {
			return err
		}
		for _, s := range srows {
			scale[s.Workers] = append(scale[s.Workers], s)
		}
	}
	fmt.Fprintf(out, "load average before: %s, after: %s; %d rounds, medians\n\n", load0, harness.LoadAverage(), cfg.Rounds)
	f50, f99 := median(floor50), median(floor99)
	bare := median(lat[names[0]][0])
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "16-byte echo, one caller\tp50\tp99\tp50 / floor\tp50 / bare nats.go")
	fmt.Fprintf(tw, "floor (raw unix socket)\t%v\t%v\t1.00×\t\n", round(f50), round(f99))
	for _, n := range names {
		p50, p99 := median(lat[n][0]), median(lat[n][1])
		fmt.Fprintf(tw, "%s\t%v\t%v\t%.2f×\t%.2f×\n", n, round(p50), round(p99), ratio(p50, f50), ratio(p50, bare))
	}
	tw.Flush()
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "workers on NATS, %d callers\tobject Echo calls/s\tp50\tFunc calls/s\tp50\tworkers that served\n", cfg.Requesters)
	for _, n := range workers {
		rs := scale[n]
		fmt.Fprintf(tw, "%d\t%.0f\t%v\t%.0f\t%v\t%d\n", n,
			medianF(rs, func(r ipcbench.ScaleRow) float64 { return r.ObjectPerS }),
			round(medianD(rs, func(r ipcbench.ScaleRow) time.Duration { return r.ObjectP50 })),
			medianF(rs, func(r ipcbench.ScaleRow) float64 { return r.FuncPerS }),
			round(medianD(rs, func(r ipcbench.ScaleRow) time.Duration { return r.FuncP50 })),
			rs[len(rs)-1].WorkersUsed)
	}
	tw.Flush()
	remote := median(lat["procxy Remote on NATS"][0])
	verdict := "met"
	if ratio(remote, bare) > 1.3 {
		verdict = "MISSED"
	}
	fmt.Fprintf(out, "\ntarget: procxy Remote on NATS p50 ≤ 1.3× bare nats.go: %.2f× — %s\n", ratio(remote, bare), verdict)
	return nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianF(rs []ipcbench.ScaleRow, f func(ipcbench.ScaleRow) float64) float64 {
	var v []float64
	for _, r := range rs {
		v = append(v, f(r))
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func medianD(rs []ipcbench.ScaleRow, f func(ipcbench.ScaleRow) time.Duration) time.Duration {
	var v []time.Duration
	for _, r := range rs {
		v = append(v, f(r))
	}
	return median(v)
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func round(d time.Duration) time.Duration { return d.Round(100 * time.Nanosecond) }
