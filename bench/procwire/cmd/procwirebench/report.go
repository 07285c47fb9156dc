package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// summary is the medians of one pair over all rounds: the scalar metrics
// are the median of the per-round values, the spawn and memory metrics the
// median of every sample of every round.
type summary struct {
	p50, p99, calls, gbps         float64
	spawn, ready, first           float64 // ms
	bareExit, bareLine, nodeE0    float64 // ms
	bare                          float64 // the baseline: bareExit (Go worker) or nodeE0 (Node worker)
	rss, anon, file               float64 // KiB
	lat, tput                     perCall // medians over the rounds, field by field
	roundP50, roundCalls, roundGB []float64
	roundSpawn                    []float64
	spawns                        int
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return -1
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// perRound returns f of the pair's result in every round.
func perRound[T any](info runInfo, pair string, f func(result) T) []T {
	var xs []T
	for _, round := range info.Results {
		xs = append(xs, f(round[pair]))
	}
	return xs
}

// medianPerCall is the median of each field.
func medianPerCall(xs []perCall) perCall {
	m := func(f func(perCall) float64) float64 {
		var v []float64
		for _, x := range xs {
			v = append(v, f(x))
		}
		return median(v)
	}
	sd := func(g func(perCall) side) side {
		return side{
			CPUus:  m(func(x perCall) float64 { return g(x).CPUus }),
			Vcs:    m(func(x perCall) float64 { return g(x).Vcs }),
			Ics:    m(func(x perCall) float64 { return g(x).Ics }),
			Reads:  m(func(x perCall) float64 { return g(x).Reads }),
			Writes: m(func(x perCall) float64 { return g(x).Writes }),
		}
	}
	return perCall{
		Parent: sd(func(x perCall) side { return x.Parent }),
		Worker: sd(func(x perCall) side { return x.Worker }),
		Cores:  m(func(x perCall) float64 { return x.Cores }),
	}
}

func summarize(info runInfo, pair string) summary {
	var s summary
	var spawn, ready, first, bexit, bline, e0, rss, anon, file []float64
	for _, round := range info.Results {
		r := round[pair]
		s.roundP50 = append(s.roundP50, r.P50us)
		s.roundCalls = append(s.roundCalls, r.CallsPerSec)
		s.roundGB = append(s.roundGB, r.GBps)
		s.roundSpawn = append(s.roundSpawn, median(r.SpawnMs))
		spawn = append(spawn, r.SpawnMs...)
		ready = append(ready, r.ReadyMs...)
		for i := range r.SpawnMs {
			first = append(first, r.SpawnMs[i]-r.ReadyMs[i])
		}
		bexit = append(bexit, r.BareExitMs...)
		bline = append(bline, r.BareLineMs...)
		e0 = append(e0, r.NodeE0Ms...)
		rss = append(rss, r.RSSKiB...)
		anon = append(anon, r.AnonKiB...)
		file = append(file, r.FileKiB...)
	}
	s.p50, s.p99 = median(s.roundP50), median(perRound(info, pair, func(r result) float64 { return r.P99us }))
	s.calls, s.gbps = median(s.roundCalls), median(s.roundGB)
	s.spawn, s.ready, s.first = median(spawn), median(ready), median(first)
	s.bareExit, s.bareLine, s.nodeE0 = median(bexit), median(bline), median(e0)
	s.bare = s.bareExit
	if len(e0) > 0 {
		s.bare = s.nodeE0
	}
	s.rss, s.anon, s.file = median(rss), median(anon), median(file)
	s.lat = medianPerCall(perRound(info, pair, func(r result) perCall { return r.Lat }))
	s.tput = medianPerCall(perRound(info, pair, func(r result) perCall { return r.Tput }))
	s.spawns = len(spawn)
	return s
}

// table prints a Markdown table with aligned columns.
func table(w io.Writer, head []string, rows [][]string) {
	width := make([]int, len(head))
	for i, h := range head {
		width[i] = len([]rune(h))
	}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cells {
			fmt.Fprintf(&b, " %s%s |", c, strings.Repeat(" ", width[i]-len([]rune(c))))
		}
		fmt.Fprintln(w, b.String())
	}
	line(head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
}

func us(v float64) string  { return fmt.Sprintf("%.1fµs", v) }
func msf(v float64) string { return fmt.Sprintf("%.1f ms", v) }
func mib(kib float64) string {
	if kib < 0 {
		return "?"
	}
	return fmt.Sprintf("%.2f MiB", kib/1024)
}
func ratio(v, ref float64) string { return fmt.Sprintf("(%.2f×)", v/ref) }

func list(xs []float64, format string) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf(format, x))
	}
	return strings.Join(s, ", ")
}

var floorTitle = map[string]string{
	"floor":           "floor (placed by the scheduler)",
	"floor-same-cpu":  "floor, both on CPU 0",
	"floor-cross-cpu": "floor, CPU 0 ↔ CPU 1",
}

func metNot(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func report(w io.Writer, info runInfo) {
	p := info.Params
	fmt.Fprintf(w, "%s %s, node %s, %d CPUs; median of %d round(s); per pair and round: %d timed spawns (+1 untimed), "+
		"%d timed 16 B calls (+%d untimed), %d in flight for %.1f s (+%.2f s warm-up), %d × 10 MiB (+%d untimed)\n",
		info.Go, info.Platform, info.Node, info.CPUs, info.Rounds, p.Spawns, p.LatCalls, p.LatWarm,
		p.Inflight, float64(p.TputMs)/1000, float64(p.TputWarmMs)/1000, p.BigCalls, p.BigWarm)
	fmt.Fprintf(w, "load average (1, 5, 15 min): before %s; at each round's start %s; after %s\n\n",
		info.LoadBefore, strings.Join(info.LoadRounds, " | "), info.LoadAfter)

	pairs := info.Pairs
	sum := map[string]summary{}
	for _, pr := range pairs {
		sum[pr] = summarize(info, pr)
	}
	ref := sum[pairNodeNode]

	// The main table.
	var rows [][]string
	for _, pr := range pairs {
		s := sum[pr]
		rows = append(rows, []string{
			pairTitle[pr],
			us(s.p50) + " " + ratio(s.p50, ref.p50),
			us(s.p99) + " " + ratio(s.p99, ref.p99),
			fmt.Sprintf("%.0f %s", s.calls, ratio(s.calls, ref.calls)),
			fmt.Sprintf("%.3f %s", s.gbps, ratio(s.gbps, ref.gbps)),
			msf(s.spawn) + " " + ratio(s.spawn, ref.spawn),
			msf(s.bare),
			fmt.Sprintf("%.2f×", s.spawn/s.bare),
			mib(s.rss) + " " + ratio(s.rss, ref.rss),
		})
	}
	table(w, []string{"parent ↔ worker", "p50 16 B", "p99 16 B", "1 KiB×64 calls/s", "10 MiB GB/s",
		"spawn → 1st call", "bare start", "spawn ÷ bare", "idle worker RSS"}, rows)
	fmt.Fprintln(w, `
(×) is the ratio to Node ↔ Node. All calls are echoRaw (raw codec) with a 16 B, 1 KiB or 10 MiB Buffer/[]byte.
GB/s counts payload bytes one way. spawn → 1st call: from the start of the spawn until the first 16 B echo
returned (median of all spawns). bare start: the same parent runtime starting the bare program with stdin
at EOF until it exits — the worker binary itself for a Go worker (it starts, listens, prints $init, sees EOF,
exits), node -e 0 for a Node worker. idle worker RSS: VmRSS of the worker after spawn, 10 calls and 200 ms idle.`)

	// Spawn breakdown.
	fmt.Fprintln(w)
	rows = nil
	for _, pr := range pairs {
		s := sum[pr]
		e0 := "—"
		if s.nodeE0 >= 0 {
			e0 = msf(s.nodeE0)
		}
		rows = append(rows, []string{pairTitle[pr], msf(s.ready), msf(s.first), msf(s.spawn),
			msf(s.bareLine), msf(s.bareExit), e0, fmt.Sprint(s.spawns)})
	}
	table(w, []string{"spawn, medians", "spawn → ready", "ready → 1st call returned", "spawn → 1st call",
		"worker cmd: exec → $init line", "worker cmd: exec → exit", "node -e 0: exec → exit", "spawns"}, rows)

	// Per round.
	fmt.Fprintln(w)
	rows = nil
	for _, pr := range pairs {
		s := sum[pr]
		rows = append(rows, []string{pairTitle[pr], list(s.roundP50, "%.1f"), list(s.roundCalls, "%.0f"),
			list(s.roundGB, "%.3f"), list(s.roundSpawn, "%.1f")})
	}
	table(w, []string{"per round", "p50 16 B µs", "1 KiB×64 calls/s", "10 MiB GB/s", "spawn → 1st call ms (median)"}, rows)

	// What each side did per call.
	perCallTable := func(title string, get func(summary) perCall, cores bool) {
		fmt.Fprintln(w)
		rows = nil
		for _, pr := range pairs {
			x := get(sum[pr])
			both := func(f func(side) float64, format string) string {
				return fmt.Sprintf(format+" / "+format, f(x.Parent), f(x.Worker))
			}
			row := []string{pairTitle[pr],
				both(func(s side) float64 { return s.CPUus }, "%.1f"),
				both(func(s side) float64 { return s.Vcs }, "%.2f"),
				both(func(s side) float64 { return s.Ics }, "%.2f"),
				both(func(s side) float64 { return s.Reads }, "%.2f"),
				both(func(s side) float64 { return s.Writes }, "%.2f")}
			if cores {
				row = append(row, fmt.Sprintf("%.2f", x.Cores))
			}
			rows = append(rows, row)
		}
		head := []string{title, "CPU µs", "vol. cs", "invol. cs", "read calls", "write calls"}
		if cores {
			head = append(head, "cores busy")
		}
		table(w, head, rows)
	}
	perCallTable("per 16 B call: parent / worker", func(s summary) perCall { return s.lat }, false)
	perCallTable("per 1 KiB×64 call: parent / worker", func(s summary) perCall { return s.tput }, true)
	fmt.Fprintln(w, `
Per call, parent / worker, over the timed 16 B run and over the counted part of the 1 KiB×64 run (medians of the
rounds): CPU time (parent: getrusage, all threads; worker: /proc/<pid>/stat, 10 ms ticks), voluntary and
involuntary context switches (cs; parent: getrusage; worker: its live threads), read and write system calls
(/proc/<pid>/io syscr, syscw). cores busy: CPU time of both ÷ wall time, on 2 shared CPUs.`)

	// Memory.
	fmt.Fprintln(w)
	rows = nil
	for _, pr := range pairs {
		s := sum[pr]
		rows = append(rows, []string{pairTitle[pr], mib(s.rss), mib(s.anon), mib(s.file)})
	}
	table(w, []string{"idle worker, /proc/<pid>/status", "VmRSS", "RssAnon", "RssFile"}, rows)

	// The floor.
	fmt.Fprintln(w)
	rows = nil
	for _, f := range info.Floors {
		p50s := perRound(info, f, func(r result) float64 { return r.P50us })
		p50, p99 := median(p50s), median(perRound(info, f, func(r result) float64 { return r.P99us }))
		vcs := median(perRound(info, f, func(r result) float64 { return r.Lat.Parent.Vcs }))
		rows = append(rows, []string{floorTitle[f], us(p50) + " " + ratio(p50, ref.p50), us(p99),
			fmt.Sprintf("%.2f", vcs), list(p50s, "%.1f")})
	}
	table(w, []string{"raw-socket floor, Go ↔ Go", "p50 16 B", "p99 16 B", "client vol. cs/call", "p50 per round µs"}, rows)
	fmt.Fprintln(w, `
floor: a 4-byte length and the payload over a Unix socketpair, echoed by the child with one write; the client does one
write and one read per call on one goroutine (no rpc). (×) is the ratio to Node ↔ Node's p50.`)

	// Targets.
	gg, ng := sum[pairGoGo], sum[pairNodeGo]
	fmt.Fprintln(w, "\ntargets:")
	fmt.Fprintf(w, "- Go↔Go p50 ≤ 0.5× Node↔Node: %s vs %s = %.2f× — %s\n",
		us(gg.p50), us(ref.p50), gg.p50/ref.p50, metNot(gg.p50 <= 0.5*ref.p50))
	okP50, okCalls, okGB := ng.p50 <= ref.p50, ng.calls >= ref.calls, ng.gbps >= ref.gbps
	fmt.Fprintf(w, "- Node parent ↔ Go worker no slower than Node↔Node: p50 %s vs %s (%.2f×) %s; "+
		"1 KiB×64 %.0f vs %.0f calls/s (%.2f×) %s; 10 MiB %.3f vs %.3f GB/s (%.2f×) %s — %s\n",
		us(ng.p50), us(ref.p50), ng.p50/ref.p50, metNot(okP50),
		ng.calls, ref.calls, ng.calls/ref.calls, metNot(okCalls),
		ng.gbps, ref.gbps, ng.gbps/ref.gbps, metNot(okGB), metNot(okP50 && okCalls && okGB))
	fmt.Fprintf(w, "- Go↔Go spawn → first call ≤ 1.2× bare start of the worker binary (exec → exit): %s vs %s = %.2f× — %s "+
		"(against exec → $init line, %s: %.2f×)\n",
		msf(gg.spawn), msf(gg.bare), gg.spawn/gg.bare, metNot(gg.spawn <= 1.2*gg.bare), msf(gg.bareLine), gg.spawn/gg.bareLine)
	const limit = 6 * 1024
	fmt.Fprintf(w, "- idle Go worker RSS ≤ 6 MiB: %s under the Go host, %s under the Node parent — %s\n",
		mib(gg.rss), mib(ng.rss), metNot(gg.rss >= 0 && gg.rss <= limit && ng.rss >= 0 && ng.rss <= limit))
	// Issue 10's targets for the data path.
	fmt.Fprintf(w, "- (issue 10) Go host ↔ Go worker 16 B p50 ≤ 0.8× Node↔Node: %s vs %s = %.2f× — %s\n",
		us(gg.p50), us(ref.p50), gg.p50/ref.p50, metNot(gg.p50 <= 0.8*ref.p50))
	fmt.Fprintf(w, "- (issue 10) Node parent ↔ Go worker 1 KiB×64 ≥ Node↔Node: %.0f vs %.0f calls/s = %.2f× — %s\n",
		ng.calls, ref.calls, ng.calls/ref.calls, metNot(okCalls))
}
