package harness

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"sync"

	"github.com/procxy/procxy"
)

// The procxy object proxy: a Calculator registered here, constructed in a
// child (this executable re-run with PROCXY_CHILD set, whose main calls
// procxy.Main first) by procxy.New, and called with procxy.Call. The
// child's connection is procxy's own socketpair; the child serves each
// method by reflection (handlerFor in the library's child.go), decoding the
// msgpack arguments one by one.

// Calculator is the proxied type of the "proxied call" section.
type Calculator struct {
	prof *os.File // the child's CPU profile, when EnvChildProfile asks for one
	mu   sync.Mutex
}

// Add is the measured method: two ints in, one int out.
func (*Calculator) Add(a, b int) int { return a + b }

// Echo returns its argument: the echo table's object-proxy row.
func (*Calculator) Echo(b []byte) []byte { return b }

// Len returns its argument's length: the large-argument memory measurement.
func (*Calculator) Len(b []byte) int { return len(b) }

// StopCPUProfile ends the child's CPU profile (see newCalculator). The
// parent calls it before closing the proxy: procxy.Main exits the child
// with os.Exit, which would leave the profile unwritten.
func (c *Calculator) StopCPUProfile() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prof != nil {
		pprof.StopCPUProfile()
		c.prof.Close()
		c.prof = nil
	}
}

// newCalculator runs in the child. With EnvChildProfile in the environment
// (which the child inherits) it starts a CPU profile written to
// "$EnvChildProfile.procxy-object.<pid>.pprof".
func newCalculator() *Calculator {
	c := &Calculator{}
	if prefix := os.Getenv(EnvChildProfile); prefix != "" {
		f, err := os.Create(fmt.Sprintf("%s.procxy-object.%d.pprof", prefix, os.Getpid()))
		if err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				f.Close()
			} else {
				c.prof = f
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "procxybench object child: cpu profile: %v\n", err)
		}
	}
	return c
}

func init() { procxy.Register[Calculator](newCalculator) }

// CalculatorStub is what a hand-written (or `procxy gen`) typed stub looks
// like: procxy.Call inside a method.
type CalculatorStub struct{ P *procxy.Proxy[Calculator] }

// Add calls Calculator.Add in the child.
func (s CalculatorStub) Add(ctx context.Context, a, b int) (int, error) {
	return procxy.Call[int](ctx, s.P, "Add", a, b)
}

// objectClient measures procxy.Call[int](ctx, p, "Add", a, b), or the same
// call through CalculatorStub.
type objectClient struct {
	p    *procxy.Proxy[Calculator]
	stub bool
}

func startObject(stub bool, opts ...procxy.Option) (CallClient, error) {
	p, err := procxy.New[Calculator](context.Background(), opts...)
	if err != nil {
		return nil, err
	}
	return &objectClient{p: p, stub: stub}, nil
}

func (c *objectClient) Add(ctx context.Context, a, b int) (int, error) {
	if c.stub {
		return CalculatorStub{c.p}.Add(ctx, a, b)
	}
	return procxy.Call[int](ctx, c.p, "Add", a, b)
}

func (c *objectClient) PID() int { return c.p.Process().Pid }

func (c *objectClient) Close() error { return closeObject(c.p) }

// closeObject closes an object proxy's child, writing its CPU profile
// first when EnvChildProfile asked for one.
func closeObject(p *procxy.Proxy[Calculator]) error {
	if os.Getenv(EnvChildProfile) != "" {
		if _, err := procxy.Call[struct{}](context.Background(), p, "StopCPUProfile"); err != nil {
			fmt.Fprintf(os.Stderr, "procxybench: stop the object child's profile: %v\n", err)
		}
	}
	return p.Close()
}

// objectEchoClient is the echo table's object-proxy row:
// procxy.CallInto(ctx, p, "Echo", &out, in), which reads the result into
// out's storage when it has room (procxy.Call[[]byte] would allocate a new
// slice per call).
type objectEchoClient struct {
	p *procxy.Proxy[Calculator]
}

func startObjectEcho(opts ...procxy.Option) (Client, error) {
	p, err := procxy.New[Calculator](context.Background(), opts...)
	if err != nil {
		return nil, err
	}
	return &objectEchoClient{p: p}, nil
}

func (c *objectEchoClient) Echo(ctx context.Context, in, out []byte) ([]byte, error) {
	err := procxy.CallInto(ctx, c.p, "Echo", &out, in)
	return out, err
}

// PID is the child's process id.
func (c *objectEchoClient) PID() int { return c.p.Process().Pid }

func (c *objectEchoClient) Close() error { return closeObject(c.p) }
