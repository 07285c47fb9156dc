package procxy_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/procxy/procxy"
)

var square = procxy.Func("square", func(_ context.Context, x int) (int, error) { return x * x, nil })

var whoami = procxy.Func("whoami", func(context.Context, struct{}) (int, error) { return pid(), nil },
	procxy.PoolSize(2))

func TestFunc(t *testing.T) {
	defer square.Close()
	if v, err := square.Local(t.Context(), 7); err != nil || v != 49 {
		t.Errorf("Local(7) = %d, %v", v, err)
	}
	if v, err := square.Call(t.Context(), 9); err != nil || v != 81 {
		t.Errorf("Call(9) = %d, %v", v, err)
	}
	defer whoami.Close()
	seen := map[int]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			p, err := whoami.Call(t.Context(), struct{}{})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			seen[p] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(seen) != 2 || seen[pid()] {
		t.Errorf("calls ran in %v; want the 2 children of the pool", seen)
	}
}

func TestPool(t *testing.T) {
	// Add is idempotent, so a call that reached a member as it died is
	// retried on another one.
	pl, err := procxy.NewPool[Calculator](t.Context(), 3, procxy.Logger(childLog(t)), procxy.Retries(2), procxy.Idempotent("Add"))
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	if sum, err := procxy.Call[int](t.Context(), pl, "Add", 2, 3); err != nil || sum != 5 {
		t.Fatalf("Add = %d, %v", sum, err)
	}
	// Least-outstanding routing: 3 slow calls land on 3 different children.
	var mu sync.Mutex
	var pids []int
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			var p int
			for v, err := range procxy.Stream[int](t.Context(), pl, "SlowPID", 300) {
				if err != nil {
					t.Error(err)
					return
				}
				p = v
			}
			mu.Lock()
			pids = append(pids, p)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(pids)
	if len(slices.Compact(pids)) != 3 {
		t.Errorf("3 concurrent calls ran in %v; want 3 different children", pids)
	}
	// A dead member is replaced.
	before := pl.PIDs()
	procxy.Call[any](t.Context(), pl, "Crash", "exit")
	for range 100 {
		if sum, err := procxy.Call[int](t.Context(), pl, "Add", 1, 1); err != nil || sum != 2 {
			t.Fatalf("after a member died: %d, %v", sum, err)
		}
	}
	waitFor(t, func() bool { return len(pl.PIDs()) == 3 && !slices.Equal(pl.PIDs(), before) })
	if err := pl.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := procxy.Call[int](t.Context(), pl, "Add", 1, 1); !errors.Is(err, procxy.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}
