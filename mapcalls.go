package procxy

import (
	"context"
	"fmt"
	"iter"
	"sync"
)

// MapOption configures Map, Function.Map and Function.MapUnordered.
type MapOption interface{ applyMap(*mapOptions) }

type mapOptions struct{ inFlight int }

type inFlight int

func (n inFlight) applyMap(o *mapOptions) { o.inFlight = int(n) }

// InFlight bounds the calls a Map has under way at once. The default is
// twice the pool's size for a Function or a Pool (so that every child has
// its next input waiting), and 16 otherwise.
func InFlight(n int) MapOption { return inFlight(n) }

// Each is one result of MapUnordered: the index of its input, and what
// the call returned.
type Each[R any] struct {
	Index int
	Value R
	Err   error
}

// Map calls method on t once for every input (its one argument), with a
// bounded number of calls in flight, and returns the results in input
// order, as Python's Pool.map does. The first call that fails cancels the
// others and is Map's error, which names the input's index; so does ctx
// ending. t is usually a *Pool: each call goes to its least busy member.
func Map[R, A, T any](ctx context.Context, t Target[T], method string, inputs []A, opts ...MapOption) ([]R, error) {
	limit := 16
	if pl, ok := t.(*Pool[T]); ok {
		limit = 2 * pl.Size()
	}
	return mapOrdered(ctx, inputs, mapLimit(limit, opts), func(ctx context.Context, a A) (R, error) {
		return Call[R](ctx, t, method, a)
	})
}

// Map runs the function on every input in the function's children (or
// its workers, for a Function from Via), with a bounded number of calls in
// flight, and returns the results in input order. The first call that
// fails cancels the others and is Map's error, naming the input's index.
// With Retries and Idempotent() among the Func's options, a call whose
// child died is retried on another.
func (f *Function[A, R]) Map(ctx context.Context, inputs []A, opts ...MapOption) ([]R, error) {
	return mapOrdered(ctx, inputs, mapLimit(2*f.size, opts), f.Call)
}

// MapUnordered is Map that yields each result as its call ends, in
// whatever order they end, with the index of its input. A failed call is
// yielded with its error and the others go on. Breaking out of the loop,
// or ctx ending, cancels the calls under way and starts no more.
func (f *Function[A, R]) MapUnordered(ctx context.Context, inputs []A, opts ...MapOption) iter.Seq[Each[R]] {
	return mapUnordered(ctx, inputs, mapLimit(2*f.size, opts), f.Call)
}

func mapLimit(def int, opts []MapOption) int {
	o := mapOptions{inFlight: def}
	for _, opt := range opts {
		opt.applyMap(&o)
	}
	return max(o.inFlight, 1)
}

func mapOrdered[A, R any](ctx context.Context, inputs []A, limit int, call func(context.Context, A) (R, error)) ([]R, error) {
	out := make([]R, len(inputs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var first error
	for e := range mapUnordered(ctx, inputs, limit, call) {
		if e.Err != nil {
			if first == nil {
				first = fmt.Errorf("procxy: Map: input %d: %w", e.Index, e.Err)
			}
			cancel() // the others end with context.Canceled, which the first error explains
			continue
		}
		out[e.Index] = e.Value
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

func mapUnordered[A, R any](ctx context.Context, inputs []A, limit int, call func(context.Context, A) (R, error)) iter.Seq[Each[R]] {
	return func(yield func(Each[R]) bool) {
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer wg.Wait() // after cancel: no call outlives the loop
		defer cancel()
		results := make(chan Each[R], limit)
		slots := make(chan struct{}, limit)
		wg.Go(func() {
			defer close(results)
			var calls sync.WaitGroup
			defer calls.Wait()
			for i, a := range inputs {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					results <- Each[R]{Index: i, Err: ctx.Err()}
					return
				}
				calls.Go(func() {
					defer func() { <-slots }()
					v, err := call(ctx, a)
					results <- Each[R]{Index: i, Value: v, Err: err}
				})
			}
		})
		for e := range results {
			if !yield(e) {
				cancel()
				for range results { // let the calls under way end
				}
				return
			}
		}
	}
}
