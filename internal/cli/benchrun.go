package cli

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// benchTarget is what procxy bench loads. Do performs one operation —
// one call of a Procwire worker's method; another target kind (an ipc
// request, say) only needs its own Do — and returns the bytes it
// received. Do is called from many goroutines at once.
type benchTarget interface {
	Do(ctx context.Context) (received int, err error)
}

// loadConfig shapes a load run.
type loadConfig struct {
	concurrency int           // callers, each with one operation in flight
	calls       int64         // operations to run in all; 0 means no limit
	duration    time.Duration // how long to start operations; 0 means no limit
	rate        float64       // operations started per second over all callers; 0 means as fast as they go
}

// loadCounters are read while a run goes on, by the progress display.
type loadCounters struct {
	done, failed atomic.Int64
}

// loadResult is what a run measured.
type loadResult struct {
	latencies []time.Duration // of the operations that succeeded, sorted
	failed    int64
	errors    map[string]int64 // failure messages and how often each came
	firstErr  error
	received  int64         // bytes received by the operations that succeeded
	elapsed   time.Duration // from the first start to the last end
	stopped   bool          // ctx ended the run early
}

// runLoad runs operations of t as cfg says, until the number of calls or
// the duration is reached or ctx ends. Operations in flight when the
// duration ends finish and count; those that ctx cuts short do not.
func runLoad(ctx context.Context, t benchTarget, cfg loadConfig, cnt *loadCounters) loadResult {
	var (
		issued atomic.Int64
		stop   atomic.Bool
		lim    *rate.Limiter
	)
	if cfg.rate > 0 {
		lim = rate.NewLimiter(rate.Limit(cfg.rate), 1)
	}
	type callerResult struct {
		lat      []time.Duration
		errors   map[string]int64
		firstErr error
		received int64
	}
	results := make([]callerResult, cfg.concurrency)
	per := 0
	if cfg.calls > 0 {
		per = int(min(cfg.calls/int64(cfg.concurrency)+1, 1<<20))
	}
	start := time.Now()
	if cfg.duration > 0 {
		t := time.AfterFunc(cfg.duration, func() { stop.Store(true) })
		defer t.Stop()
	}
	var wg sync.WaitGroup
	for i := range results {
		r := &results[i]
		r.lat = make([]time.Duration, 0, per)
		wg.Go(func() {
			for !stop.Load() && ctx.Err() == nil {
				if cfg.calls > 0 && issued.Add(1) > cfg.calls {
					return
				}
				if lim != nil && lim.Wait(ctx) != nil {
					return
				}
				t0 := time.Now()
				n, err := t.Do(ctx)
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil {
						return // cut short by ctx: neither a success nor a failure
					}
					if r.errors == nil {
						r.errors = map[string]int64{}
						r.firstErr = err
					}
					r.errors[err.Error()]++
					cnt.failed.Add(1)
					continue
				}
				r.lat = append(r.lat, d)
				r.received += int64(n)
				cnt.done.Add(1)
			}
		})
	}
	wg.Wait()
	res := loadResult{elapsed: time.Since(start), stopped: ctx.Err() != nil, errors: map[string]int64{}}
	n := 0
	for _, r := range results {
		n += len(r.lat)
	}
	res.latencies = make([]time.Duration, 0, n)
	for _, r := range results {
		res.latencies = append(res.latencies, r.lat...)
		res.received += r.received
		for msg, k := range r.errors {
			res.errors[msg] += k
			res.failed += k
		}
		if res.firstErr == nil {
			res.firstErr = r.firstErr
		}
	}
	slices.Sort(res.latencies)
	return res
}

// warmUp runs n untimed operations with the given concurrency and returns
// the first failure.
func warmUp(ctx context.Context, t benchTarget, n int64, concurrency int) error {
	var (
		issued atomic.Int64
		once   sync.Once
		first  error
		wg     sync.WaitGroup
	)
	for range min(int64(concurrency), n) {
		wg.Go(func() {
			for issued.Add(1) <= n && ctx.Err() == nil {
				if _, err := t.Do(ctx); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
