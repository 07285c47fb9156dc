// Command ipcbench compares package ipc, over a Unix socket and over TCP,
// with NATS (nats-server and nats.go) and a raw Unix-socket floor. Every
// party is its own process: the hub, the responders and the subscribers
// are this binary re-executed; this process requests and publishes.
//
//	go run ./cmd/ipcbench [-quick] [-rounds N] [-json results.json]
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
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/procxy/procxy/bench/internal/harness"
	"github.com/procxy/procxy/bench/internal/ipcbench"
)

func main() {
	harness.MaybeChild() // the floor's echo server
	ipcbench.MaybeChild()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "ipcbench:", err)
		os.Exit(1)
	}
}

// row is one system's medians.
type row struct {
	System       string  `json:"system"`
	ToServerP50  int64   `json:"to_server_p50_ns,omitempty"`
	ToServerP99  int64   `json:"to_server_p99_ns,omitempty"`
	ViaHubP50    int64   `json:"via_hub_p50_ns"`
	ViaHubP99    int64   `json:"via_hub_p99_ns"`
	Pub16x1      float64 `json:"pubsub_16B_1to1_msgs_per_s"`
	Pub16x8      float64 `json:"pubsub_16B_1to8_msgs_per_s"`
	Pub16Kx1     float64 `json:"pubsub_16KiB_1to1_msgs_per_s"`
	Pub16Kx8     float64 `json:"pubsub_16KiB_1to8_msgs_per_s"`
	MinDelivered float64 `json:"pubsub_min_delivered_fraction"`
	GroupPerSec  float64 `json:"queue_group_req_per_s"`
	GroupP50     int64   `json:"queue_group_p50_ns"`
	GroupP99     int64   `json:"queue_group_p99_ns"`
	IdleRSS      int64   `json:"idle_clients_rss_bytes"`
	BaseRSS      int64   `json:"hub_rss_bytes"`
}

type results struct {
	Load      string         `json:"load_average"`
	FloorP50  int64          `json:"floor_p50_ns"`
	FloorP99  int64          `json:"floor_p99_ns"`
	Rows      []row          `json:"rows"`
	Rounds    map[string]any `json:"-"`
	Config    ipcbench.Config
	Generated time.Time `json:"generated"`
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("ipcbench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "a short smoke run")
	rounds := fs.Int("rounds", 0, "rounds in rotation (default 3, 1 with -quick); medians are reported")
	jsonPath := fs.String("json", "", "also write the results as JSON to this file")
	only := fs.String("only", "", "run only these measurements (comma-separated: req, pubsub, group, idle)")
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
	systems := ipcbench.Systems()
	want := func(name string) bool { return *only == "" || strings.Contains(","+*only+",", ","+name+",") }
	if !want("idle") {
		cfg.SkipIdle = true
	}
	type samples struct {
		toS50, toS99, via50, via99, g50, g99 []time.Duration
		p16x1, p16x8, p16kx1, p16kx8, gps    []float64
		delivered                            []float64
		rss, base                            []int64
	}
	all := make([]samples, len(systems))
	var floor50, floor99 []time.Duration
	load0 := harness.LoadAverage()
	for r := range cfg.Rounds {
		fmt.Fprintf(os.Stderr, "round %d/%d\n", r+1, cfg.Rounds)
		fl, err := ipcbench.Floor(ctx, cfg)
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		floor50, floor99 = append(floor50, fl.P50), append(floor99, fl.P99)
		for i, s := range systems {
			if err := ctx.Err(); err != nil {
				return err
			}
			sm := &all[i]
			if s.Name == "ipc" && want("req") {
				l, err := s.ToServer(ctx, cfg)
				if err != nil {
					return fmt.Errorf("%s to server: %w", s.Label(), err)
				}
				sm.toS50, sm.toS99 = append(sm.toS50, l.P50), append(sm.toS99, l.P99)
			}
			if want("req") {
				l, err := s.ViaHub(ctx, cfg)
				if err != nil {
					return fmt.Errorf("%s via hub: %w", s.Label(), err)
				}
				sm.via50, sm.via99 = append(sm.via50, l.P50), append(sm.via99, l.P99)
			}
			for _, p := range []struct {
				size, subs, n int
				dst           *[]float64
			}{{16, 1, cfg.PubMsgs16, &sm.p16x1}, {16, 8, cfg.PubMsgs16, &sm.p16x8}, {16 << 10, 1, cfg.PubMsgs16K, &sm.p16kx1}, {16 << 10, 8, cfg.PubMsgs16K, &sm.p16kx8}} {
				if !want("pubsub") {
					break
				}
				ps, err := s.PubSub(ctx, p.size, p.subs, p.n)
				if err != nil {
					return fmt.Errorf("%s pub/sub %d B 1→%d: %w", s.Label(), p.size, p.subs, err)
				}
				*p.dst = append(*p.dst, ps.MsgsPerSec)
				if ps.Delivered < 1 {
					fmt.Fprintf(os.Stderr, "%s pub/sub %d B 1→%d: %.1f%% delivered\n", s.Label(), p.size, p.subs, 100*ps.Delivered)
				}
				sm.delivered = append(sm.delivered, ps.Delivered)
			}
			if want("group") {
				g, err := s.QueueGroup(ctx, cfg)
				if err != nil {
					return fmt.Errorf("%s queue group: %w", s.Label(), err)
				}
				sm.gps, sm.g50, sm.g99 = append(sm.gps, g.PerSec), append(sm.g50, g.P50), append(sm.g99, g.P99)
			}
			if !cfg.SkipIdle {
				before, with, err := s.IdleRSS(ctx, cfg.IdleClients)
				if err != nil {
					return fmt.Errorf("%s idle clients: %w", s.Label(), err)
				}
				sm.base, sm.rss = append(sm.base, before), append(sm.rss, with)
			}
		}
	}
	res := results{Load: load0 + " → " + harness.LoadAverage(), FloorP50: int64(median(floor50)), FloorP99: int64(median(floor99)), Config: cfg, Generated: time.Now()}
	for i, s := range systems {
		sm := all[i]
		res.Rows = append(res.Rows, row{
			System: s.Label(), ToServerP50: int64(median(sm.toS50)), ToServerP99: int64(median(sm.toS99)),
			ViaHubP50: int64(median(sm.via50)), ViaHubP99: int64(median(sm.via99)),
			Pub16x1: median(sm.p16x1), Pub16x8: median(sm.p16x8), Pub16Kx1: median(sm.p16kx1), Pub16Kx8: median(sm.p16kx8),
			MinDelivered: minOr1(sm.delivered),
			GroupPerSec:  median(sm.gps), GroupP50: int64(median(sm.g50)), GroupP99: int64(median(sm.g99)),
			IdleRSS: median(sm.rss), BaseRSS: median(sm.base),
		})
	}
	print(out, res)
	if *jsonPath != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		return os.WriteFile(*jsonPath, b, 0o644)
	}
	return nil
}

func median[T int64 | float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func minOr1(v []float64) float64 {
	if len(v) == 0 {
		return 1
	}
	return slices.Min(v)
}

func us(ns int64) string { return fmt.Sprintf("%.1fµs", float64(ns)/1e3) }

func print(w io.Writer, r results) {
	var nats row
	for _, x := range r.Rows {
		if x.System == "nats/tcp" {
			nats = x
		}
	}
	ratio := func(a, b float64) string {
		if b == 0 {
			return ""
		}
		return fmt.Sprintf(" (%.2f×)", a/b)
	}
	fmt.Fprintf(w, "load average %s; %d rounds, medians\n\n", r.Load, r.Config.Rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "request/reply 16 B\tclient→server p50\tp99\tclient→hub→client p50\tp99")
	fmt.Fprintf(tw, "floor/unix\t%s (1.00×)\t%s\t\t\n", us(r.FloorP50), us(r.FloorP99))
	for _, x := range r.Rows {
		to := "—\t—"
		if x.ToServerP50 > 0 {
			to = us(x.ToServerP50) + ratio(float64(x.ToServerP50), float64(r.FloorP50)) + "\t" + us(x.ToServerP99)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s%s\t%s\n", x.System, to, us(x.ViaHubP50), ratio(float64(x.ViaHubP50), float64(nats.ViaHubP50)), us(x.ViaHubP99))
	}
	tw.Flush()
	fmt.Fprintln(w, "\n(client→server: ratio to the floor; client→hub→client: ratio to NATS)")
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "pub/sub msgs/s (delivered)\t16 B 1→1\t16 B 1→8\t16 KiB 1→1\t16 KiB 1→8\tleast delivered")
	for _, x := range r.Rows {
		fmt.Fprintf(tw, "%s\t%.0f%s\t%.0f%s\t%.0f%s\t%.0f%s\t%.1f%%\n", x.System,
			x.Pub16x1, ratio(x.Pub16x1, nats.Pub16x1), x.Pub16x8, ratio(x.Pub16x8, nats.Pub16x8),
			x.Pub16Kx1, ratio(x.Pub16Kx1, nats.Pub16Kx1), x.Pub16Kx8, ratio(x.Pub16Kx8, nats.Pub16Kx8), 100*x.MinDelivered)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%d requesters, queue group of 2\treq/s\tp50\tp99\n", r.Config.Requesters)
	for _, x := range r.Rows {
		fmt.Fprintf(tw, "%s\t%.0f%s\t%s\t%s\n", x.System, x.GroupPerSec, ratio(x.GroupPerSec, nats.GroupPerSec), us(x.GroupP50), us(x.GroupP99))
	}
	tw.Flush()
	if r.Config.SkipIdle {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "hub RSS\tidle\twith %d idle clients\n", r.Config.IdleClients)
	for _, x := range r.Rows {
		fmt.Fprintf(tw, "%s\t%.1f MiB\t%.1f MiB\n", x.System, float64(x.BaseRSS)/(1<<20), float64(x.IdleRSS)/(1<<20))
	}
	tw.Flush()
}
