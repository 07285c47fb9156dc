package procxy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/procxy/procxy/internal/testproc"

	"github.com/procxy/procxy"
)

const envMapMarker = "PROCXY_TEST_MAP_MARKER"

// mapSquare squares its input. Input 5000 kills its child the first time
// (while the marker file does not exist): a pool member dies midway.
var mapSquare = procxy.Func("test.mapSquare", func(_ context.Context, x int) (int, error) {
	if x == 5000 {
		if marker := os.Getenv(envMapMarker); marker != "" {
			if _, err := os.Stat(marker); err != nil {
				os.WriteFile(marker, nil, 0o600)
				testproc.Kill(os.Getpid())
			}
		}
	}
	if x < 0 {
		return 0, errors.New("negative input")
	}
	return x * x, nil
}, procxy.PoolSize(4), procxy.Retries(3), procxy.Idempotent())

// TestMap: 10,000 inputs on a pool of 4 whose member dies midway; the
// results are in order and complete, the killed call retried.
func TestMap(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "killed")
	t.Setenv(envMapMarker, marker) // the children, started on first use, inherit it
	defer mapSquare.Close()
	inputs := make([]int, 10000)
	for i := range inputs {
		inputs[i] = i
	}
	out, err := mapSquare.Map(t.Context(), inputs)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		if v != i*i {
			t.Fatalf("Map: out[%d] = %d, want %d", i, v, i*i)
		}
	}
	if _, err := os.Stat(marker); err != nil {
		t.Error("no member was killed midway")
	}

	_, err = mapSquare.Map(t.Context(), []int{1, 2, -3, 4}, procxy.InFlight(1))
	if err == nil || err.Error() != "procxy: Map: input 2: procxy: Func test.mapSquare: negative input" {
		t.Errorf("Map with a failing input: %v", err)
	}

	var got []int
	for e := range mapSquare.MapUnordered(t.Context(), []int{3, -1, 5}) {
		if e.Err != nil {
			got = append(got, -e.Index)
			continue
		}
		got = append(got, e.Value)
	}
	slices.Sort(got)
	if !slices.Equal(got, []int{-1, 9, 25}) {
		t.Errorf("MapUnordered: %v, want 9, 25 and the failed input 1", got)
	}
	for e := range mapSquare.MapUnordered(t.Context(), inputs) {
		_ = e
		break // cancels the rest; nothing is left running (goleak)
	}
}

// Map on a Pool: one argument per call, results in order.
func TestMapPool(t *testing.T) {
	pl, err := procxy.NewPool[Variadic](t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	out, err := procxy.Map[int](t.Context(), pl, "Sum", []int{1, 2, 3})
	if err != nil || !slices.Equal(out, []int{1, 2, 3}) {
		t.Fatalf("Map Sum: %v, %v", out, err)
	}
}
