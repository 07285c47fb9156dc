// Command procwirebench measures Procwire between real processes, in four
// pairings of parent and worker, side by side:
//
//	Go host ↔ Go worker      procxy's host driving examples/echoworker
//	Node parent ↔ Go worker  @procwire/core 1.5.0 driving examples/echoworker
//	Go host ↔ Node worker    procxy's host driving interop/nodeworker/worker.mjs
//	Node ↔ Node              @procwire/core 1.5.0 driving worker.mjs (@procwire/client
//	                         1.3.1): the reference every ratio is taken against
//
// Every pair calls the workers' raw-codec method echoRaw: 16 B sequential
// round trips (p50, p99), 1 KiB with 64 calls in flight (calls/s), 10 MiB
// sequential (GB/s one way); it times spawn → first echo against a bare
// start of the worker program, and reads the worker's VmRSS when idle. The
// Node parents run in a Node script (bench/procwire/node/parent.mjs) that
// prints JSON; this program runs it, measures the Go host pairs and a
// raw-socket floor itself, and prints the tables, ratios to Node ↔ Node
// and a line per target.
//
//	cd bench && go run ./procwire/cmd/procwirebench            # 5 rounds, about 2 to 3 minutes
//	cd bench && go run ./procwire/cmd/procwirebench -quick     # 1 short round, about 20 s
//
// Other flags: -rounds N, -json FILE (every round's raw results),
// -gomaxprocs1 (two more rows with GOMAXPROCS=1 in the Go processes),
// -pin (the floor also with both processes on CPU 0, and on CPUs 0 and 1),
// -nocgo (build the worker with CGO_ENABLED=0), -goworker BINARY (use a
// prebuilt Go worker), -node PATH, -root DIR.
//
// It needs node on PATH (or -node) and the pinned npm packages in
// interop/node_modules (npm ci in interop/). The echoworker is built with
// plain go build (no -race) into a temporary directory. Every process it
// starts carries PROCWIREBENCH_RUN=<token> in its environment; at the end
// it looks for any still running, kills them and fails if it found one.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/procxy/procxy/bench/internal/harness"
)

func main() {
	maybeFloor() // a floor client or echo child: runs and exits
	// A closed stdout (| head) must not kill us before the deferred cleanup.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "procwirebench:", err)
		os.Exit(1)
	}
}

// The pairs, in table order; the last two only with -gomaxprocs1.
const (
	pairGoGo     = "go-go"
	pairGoNode   = "go-node"
	pairNodeGo   = "node-go"
	pairNodeNode = "node-node"
	pairGoGo1    = "go-go-p1"
	pairNodeGo1  = "node-go-p1"
)

var pairTitle = map[string]string{
	pairGoGo:     "Go host ↔ Go worker",
	pairGoNode:   "Go host ↔ Node worker",
	pairNodeGo:   "Node parent ↔ Go worker",
	pairNodeNode: "Node ↔ Node (reference)",
	pairGoGo1:    "Go ↔ Go, GOMAXPROCS=1 both",
	pairNodeGo1:  "Node ↔ Go, worker GOMAXPROCS=1",
}

func defaultParams() params {
	return params{Spawns: 7, LatWarm: 1000, LatCalls: 10000, TputWarmMs: 150, TputMs: 1500, Inflight: 64,
		BigWarm: 1, BigCalls: 10, IdleCalls: 10, IdleMs: 200}
}

func quickParams() params {
	return params{Spawns: 5, LatWarm: 300, LatCalls: 3000, TputWarmMs: 100, TputMs: 500, Inflight: 64,
		BigWarm: 1, BigCalls: 3, IdleCalls: 10, IdleMs: 200}
}

type runInfo struct {
	Go, Node, Platform string
	CPUs               int
	Rounds             int
	Pairs              []string // measured, in table order
	Floors             []string // raw-socket floors measured
	Params             params
	LoadBefore         string
	LoadRounds         []string // at the start of each round
	LoadAfter          string
	Results            []map[string]result // per round, by pair
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("procwirebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "short run (about 20 s): 1 round, 5 spawns, 3,000 timed calls, 0.5 s of 64 in flight, 3 × 10 MiB")
	rounds := fs.Int("rounds", 0, "rounds; every pair is measured once per round and medians are printed (default 5, 1 with -quick)")
	jsonPath := fs.String("json", "", "also write every round's raw results as JSON to this file")
	nodePath := fs.String("node", "", "the node executable (default: node on PATH)")
	root := fs.String("root", "", "procxy's repository root (default: found from the working directory)")
	workerBin := fs.String("goworker", "", "use this Go worker binary (it must serve echoRaw like examples/echoworker) instead of building examples/echoworker")
	pin := fs.Bool("pin", false, "also run the raw-socket floor with both processes on CPU 0, and on CPUs 0 and 1 (needs taskset)")
	nocgo := fs.Bool("nocgo", false, "build the Go worker with CGO_ENABLED=0 (a static binary without libc)")
	procs1 := fs.Bool("gomaxprocs1", false, "also measure Go host ↔ Go worker with GOMAXPROCS=1 in both processes, "+
		"and Node parent ↔ Go worker with GOMAXPROCS=1 in the worker (two more rows, about 40% more time)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p := defaultParams()
	if *quick {
		p = quickParams()
	}
	if *rounds <= 0 {
		*rounds = 5
		if *quick {
			*rounds = 1
		}
	}
	if *root == "" {
		if *root, err = findRoot(); err != nil {
			return err
		}
	}
	node := *nodePath
	if node == "" {
		if node, err = exec.LookPath("node"); err != nil {
			return fmt.Errorf("node is not on PATH (%w); pass -node", err)
		}
	}
	interop := filepath.Join(*root, "interop")
	if _, err := os.Stat(filepath.Join(interop, "node_modules", "@procwire", "core", "package.json")); err != nil {
		return fmt.Errorf("interop/node_modules lacks @procwire/core (%w): run npm ci in %s", err, interop)
	}
	script := filepath.Join(*root, "bench", "procwire", "node", "parent.mjs")
	nodeWorker := filepath.Join(interop, "nodeworker", "worker.mjs")
	nodeVersion, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %w", node, err)
	}

	tmp, err := os.MkdirTemp("", "procwirebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	goWorker := filepath.Join(tmp, "echoworker")
	if *workerBin != "" {
		if goWorker, err = filepath.Abs(*workerBin); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stderr, "procwirebench: go build ./examples/echoworker")
		build := exec.CommandContext(ctx, goTool(), "build", "-o", goWorker, "./examples/echoworker")
		build.Dir = *root
		build.Env = append(os.Environ(), "GOFLAGS=") // plain build: no -race from the environment
		if *nocgo {
			build.Env = append(build.Env, "CGO_ENABLED=0")
		}
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./examples/echoworker: %w\n%s", err, out)
		}
	}

	info := runInfo{Go: runtime.Version(), Node: strings.TrimSpace(string(nodeVersion)),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(), Rounds: *rounds, Params: p,
		LoadBefore: harness.LoadAverage()}

	// Every child of this run, and their children, carry the marker.
	var tok [8]byte
	rand.Read(tok[:])
	marker := "PROCWIREBENCH_RUN=" + hex.EncodeToString(tok[:])
	defer func() {
		if pids := marked(marker); len(pids) > 0 {
			for _, pid := range pids {
				kill(pid)
			}
			fmt.Fprintf(stdout, "\nleftover processes: %v (killed)\n", pids)
			err = errors.Join(err, fmt.Errorf("%d process(es) of this run were still running at the end: %v", len(pids), pids))
		} else {
			fmt.Fprintln(stdout, "\nleftover processes of this run: none")
		}
	}()

	targets := map[string]target{
		pairGoGo:     {Name: pairGoGo, Command: goWorker},
		pairGoNode:   {Name: pairGoNode, Command: node, Args: []string{nodeWorker}, Node: true},
		pairNodeGo:   {Name: pairNodeGo, Command: goWorker},
		pairNodeNode: {Name: pairNodeNode, Command: node, Args: []string{nodeWorker}, Node: true},
		pairGoGo1:    {Name: pairGoGo1, Command: goWorker, Env: []string{"GOMAXPROCS=1"}, Procs: 1},
		pairNodeGo1:  {Name: pairNodeGo1, Command: goWorker, Env: []string{"GOMAXPROCS=1"}},
	}
	goPairs, nodePairs := []string{pairGoGo, pairGoNode}, []string{pairNodeNode, pairNodeGo}
	info.Pairs = []string{pairGoGo, pairNodeGo, pairGoNode, pairNodeNode}
	if *procs1 {
		goPairs, nodePairs = append(goPairs, pairGoGo1), append(nodePairs, pairNodeGo1)
		info.Pairs = append(info.Pairs, pairGoGo1, pairNodeGo1)
	}
	floors := floorPlacements[:1]
	if *pin {
		if err := haveTaskset(); err != nil {
			return fmt.Errorf("-pin: %w", err)
		}
		if runtime.NumCPU() < 2 {
			return errors.New("-pin needs 2 CPUs")
		}
		floors = floorPlacements
	}
	for _, f := range floors {
		info.Floors = append(info.Floors, f.name)
	}
	gh := &goHost{p: p, env: []string{marker}, node: node,
		logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}

	start := time.Now()
	for r := range *rounds {
		info.LoadRounds = append(info.LoadRounds, harness.LoadAverage())
		got := map[string]result{}
		goSide := func() error {
			for _, f := range floors {
				fmt.Fprintf(stderr, "procwirebench: round %d/%d: %s\n", r+1, *rounds, f.name)
				res, err := runFloor(ctx, f.name, f.client, f.echo, p.LatCalls, []string{marker})
				if err != nil {
					return err
				}
				got[f.name] = res
			}
			order := rotate(goPairs, r)
			for _, name := range order {
				fmt.Fprintf(stderr, "procwirebench: round %d/%d: %s\n", r+1, *rounds, pairTitle[name])
				res, err := gh.measure(ctx, targets[name])
				if err != nil {
					return fmt.Errorf("%s: %w", pairTitle[name], err)
				}
				got[name] = res
			}
			return nil
		}
		nodeSide := func() error {
			var ts []target
			var names []string
			for _, name := range rotate(nodePairs, r) {
				ts, names = append(ts, targets[name]), append(names, name)
			}
			fmt.Fprintf(stderr, "procwirebench: round %d/%d: node parent (%s)\n", r+1, *rounds, strings.Join(names, ", "))
			res, err := runNode(ctx, node, script, interop, marker, p, ts, stderr)
			if err != nil {
				return err
			}
			for _, x := range res {
				got[x.Name] = x
			}
			return nil
		}
		sides := []func() error{goSide, nodeSide}
		if r%2 == 1 {
			sides = []func() error{nodeSide, goSide}
		}
		for _, side := range sides {
			if err := side(); err != nil {
				return err
			}
		}
		info.Results = append(info.Results, got)
	}
	info.LoadAfter = harness.LoadAverage()
	fmt.Fprintf(stderr, "procwirebench: measured in %v\n", time.Since(start).Round(time.Second))

	report(stdout, info)
	if *jsonPath != "" {
		b, err := json.MarshalIndent(info, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runNode runs the Node parent script once over ts and returns its results.
func runNode(ctx context.Context, node, script, interop, marker string, p params, ts []target, stderr io.Writer) ([]result, error) {
	cfg := struct {
		Interop string   `json:"interop"`
		Targets []target `json:"targets"`
		params
	}{interop, ts, p}
	arg, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, string(arg))
	cmd.Env = append(os.Environ(), marker)
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	ownGroup(cmd) // a cancel kills the script and its workers
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("node parent: %w", err)
	}
	var res []result
	done := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var x struct {
			result
			Done bool `json:"done"`
		}
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			return nil, fmt.Errorf("node parent printed %q: %w", sc.Text(), err)
		}
		if x.Done {
			done = true
			continue
		}
		res = append(res, x.result)
	}
	if !done || len(res) != len(ts) {
		return nil, fmt.Errorf("node parent: incomplete output:\n%s", out)
	}
	return res, nil
}

// rotate returns xs rotated left by r.
func rotate(xs []string, r int) []string {
	r %= len(xs)
	return append(slices.Clone(xs[r:]), xs[:r]...)
}

// findRoot walks up from the working directory to procxy's repository root.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "examples", "echoworker", "main.go")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "interop", "package.json")); err == nil {
				return dir, nil
			}
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("cannot find procxy's repository root above the working directory; pass -root")
		}
		dir = up
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}
