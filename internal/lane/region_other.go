//go:build !linux

package lane

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
)

// TestingDisable has no effect here: there is no lane to disable.
var TestingDisable atomic.Bool

// Region is a shared memory region; there are none on this platform.
type Region struct {
	mem  []byte
	heap bool
}

// Create reports ErrUnsupported: the lane needs Linux's memfd.
func Create(size int) (*Region, error) {
	return nil, fmt.Errorf("%w on %s", ErrUnsupported, runtime.GOOS)
}

// Map reports ErrUnsupported.
func Map(f *os.File, size int, writable bool) (*Region, error) {
	f.Close()
	return nil, fmt.Errorf("%w on %s", ErrUnsupported, runtime.GOOS)
}

func (r *Region) File() *os.File { return nil }
func (r *Region) DropFile()      {}
func (r *Region) Len() int       { return len(r.mem) }
func (r *Region) Bytes() []byte  { return r.mem }
func (r *Region) Close() error   { return nil }

// Rights, ParseRights and RightsSpace have nothing to do here.
func Rights(files ...*os.File) []byte           { return nil }
func ParseRights(oob []byte) (files []*os.File) { return nil }
func RightsSpace(n int) int                     { return 0 }

// Supported reports whether this platform can have a lane.
const Supported = false
