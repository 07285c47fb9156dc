package procxy_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/ipc"
)

// Greeter is registered in init, so a child (this same executable) can build it.
type Greeter struct {
	procxy.Emitter
	greeting string
}

func NewGreeter(greeting string) (*Greeter, error) { return &Greeter{greeting: greeting}, nil }

func (g *Greeter) Greet(name string) string { return g.greeting + ", " + name + "!" }

func (g *Greeter) Shout(name string) (string, error) {
	if name == "" {
		return "", errors.New("nobody to shout at")
	}
	return strings.ToUpper(g.Greet(name)), nil
}

// Wait is cancelled in the child when the caller's context ends.
func (g *Greeter) Wait(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *Greeter) Countdown(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := n; i > 0 && yield(i); i-- {
		}
	}
}

func (g *Greeter) GreetAll(names []string) int {
	for _, n := range names {
		g.Emit("greeted", g.Greet(n))
	}
	return len(names)
}

// Decorate runs in the child and calls decorate, a func of the parent, for
// each name.
func (g *Greeter) Decorate(ctx context.Context, names []string, decorate func(context.Context, string) (string, error)) ([]string, error) {
	var out []string
	for _, n := range names {
		d, err := decorate(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, g.Greet(d))
	}
	return out, nil
}

// Printer is an interface whose values a parent can pass to a child: the
// child gets a remotePrinter, whose methods call the parent's value.
type Printer interface {
	Print(ctx context.Context, line string) error
}

type remotePrinter struct{ call procxy.CallbackCaller }

func (p remotePrinter) Print(ctx context.Context, line string) error {
	return p.call(ctx, "Print", nil, line)
}

// GreetTo prints a greeting for each name on p, which lives in the parent.
func (g *Greeter) GreetTo(ctx context.Context, p Printer, names []string) error {
	for _, n := range names {
		if err := p.Print(ctx, g.Greet(n)); err != nil {
			return err
		}
	}
	return nil
}

func init() {
	procxy.Register[Greeter](NewGreeter)
	procxy.RegisterInterface(func(call procxy.CallbackCaller) Printer { return remotePrinter{call} })
}

func ExampleNew() {
	ctx := context.Background()
	g, err := procxy.New[Greeter](ctx, procxy.Config("Hello"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()
	msg, _ := procxy.Call[string](ctx, g, "Greet", "world")
	fmt.Println(msg)
	// Output: Hello, world!
}

func ExampleCall() {
	ctx := context.Background()
	g, _ := procxy.New[Greeter](ctx, procxy.Config("Hi"), procxy.CallTimeout(time.Second))
	defer g.Close()

	s, err := procxy.Call[string](ctx, g, "Shout", "gopher")
	fmt.Println(s, err)

	_, err = procxy.Call[string](ctx, g, "Shout", "")
	var re *procxy.RemoteError
	fmt.Println(errors.As(err, &re), re.Message)

	err = func() error {
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err := procxy.Call[any](ctx, g, "Wait", time.Minute)
		return err
	}()
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	// Output:
	// HI, GOPHER! <nil>
	// true nobody to shout at
	// true
}

func ExampleStream() {
	ctx := context.Background()
	g, _ := procxy.New[Greeter](ctx, procxy.Config("Hi"))
	defer g.Close()
	for n, err := range procxy.Stream[int](ctx, g, "Countdown", 3) {
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Println(n)
	}
	// Output:
	// 3
	// 2
	// 1
}

func ExampleEmitter() {
	ctx := context.Background()
	g, _ := procxy.New[Greeter](ctx, procxy.Config("Hey"))
	defer g.Close()
	got := make(chan string, 2)
	procxy.OnEvent(g, "greeted", func(msg string) { got <- msg })
	procxy.Call[int](ctx, g, "GreetAll", []string{"Ann", "Bob"})
	fmt.Println(<-got)
	fmt.Println(<-got)
	// Output:
	// Hey, Ann!
	// Hey, Bob!
}

// A func passed as an argument runs in the parent whenever the child
// calls it, until the call returns.
func ExampleCall_callback() {
	ctx := context.Background()
	g, _ := procxy.New[Greeter](ctx, procxy.Config("Hello"))
	defer g.Close()
	parent := os.Getpid()
	out, err := procxy.Call[[]string](ctx, g, "Decorate", []string{"Ann", "Bob"},
		func(_ context.Context, name string) (string, error) {
			if os.Getpid() != parent {
				return "", errors.New("not in the parent")
			}
			return "dear " + name, nil
		})
	fmt.Println(out, err)
	// Emitting events follows the same order as a local call: the
	// listeners have run when GreetAll returns.
	var greeted []string
	procxy.OnEvent(g, "greeted", func(msg string) { greeted = append(greeted, msg) })
	procxy.Call[int](ctx, g, "GreetAll", []string{"Cy"})
	fmt.Println(greeted)
	// Output:
	// [Hello, dear Ann! Hello, dear Bob!] <nil>
	// [Hello, Cy!]
}

type stdoutPrinter struct{}

func (stdoutPrinter) Print(_ context.Context, line string) error {
	_, err := fmt.Println(line)
	return err
}

// A value of an interface registered with RegisterInterface is passed as
// an argument: its methods run in the parent, here printing to the
// parent's standard output.
func ExampleRegisterInterface() {
	ctx := context.Background()
	g, _ := procxy.New[Greeter](ctx, procxy.Config("Hi"))
	defer g.Close()
	_, err := procxy.Call[struct{}](ctx, g, "GreetTo", stdoutPrinter{}, []string{"Ann", "Bob"})
	fmt.Println(err)
	// Output:
	// Hi, Ann!
	// Hi, Bob!
	// <nil>
}

// hash is a Func: declared at package level so the child knows it too.
var hash = procxy.Func("hash", func(_ context.Context, s string) (uint32, error) {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h, nil
}, procxy.PoolSize(2))

func ExampleFunc() {
	ctx := context.Background()
	defer hash.Close()
	remote, _ := hash.Call(ctx, "procxy") // in a child process
	local, _ := hash.Local(ctx, "procxy") // here
	fmt.Println(remote == local)
	// Output: true
}

func ExampleNewPool() {
	ctx := context.Background()
	pool, err := procxy.NewPool[Greeter](ctx, 2, procxy.Config("Hello"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	msg, _ := procxy.Call[string](ctx, pool, "Greet", "pool")
	fmt.Println(msg, len(pool.PIDs()))
	// Output: Hello, pool! 2
}

// A worker serves Greeter on a bus and a caller calls it through a
// Remote. Here both are in one process, on an ipc server; in production
// the workers are other processes, on this host or others (NATS through
// package natsipc).
func ExampleNewRemote() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	srv, err := ipc.Listen(ctx, filepath.Join(dir, "bus.sock"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	// The worker.
	go procxy.Serve(ctx, srv.Conn(), procxy.Serving(greeterKey), procxy.WorkerConfig(greeterKey, "Hello"))

	// The caller.
	conn, _ := ipc.Dial(ctx, srv.Addr())
	defer conn.Close()
	procxy.WaitWorkers(ctx, conn, greeterKey, 1)
	g, _ := procxy.NewRemote[Greeter](conn)
	msg, err := procxy.Call[string](ctx, g, "Greet", "fleet")
	fmt.Println(msg, err)
	// Output: Hello, fleet! <nil>
}

// greeterKey is the key Greeter is registered under: its import path and name.
const greeterKey = "github.com/procxy/procxy_test.Greeter"

// Errors keep their identity across the process boundary: the standard
// library's sentinels as they are, and the program's own once registered
// in an init function (see Values in values_test.go):
//
//	func init() {
//		procxy.RegisterError(ErrQuota)
//		procxy.RegisterErrorType[*NotFoundError]()
//	}
func ExampleRegisterError() {
	ctx := context.Background()
	v, err := procxy.New[Values](ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer v.Close()

	_, err = procxy.Call[struct{}](ctx, v, "Fail", "quota")
	fmt.Println(err)
	fmt.Println(errors.Is(err, ErrQuota))

	_, err = procxy.Call[struct{}](ctx, v, "Fail", "notfound")
	var nf *NotFoundError
	fmt.Println(errors.As(err, &nf), nf.Key, nf.Tries)

	_, err = procxy.Call[struct{}](ctx, v, "Fail", "notexist")
	fmt.Println(errors.Is(err, fs.ErrNotExist))
	// Output:
	// procxy: Values.Fail: values: quota: values: quota exceeded
	// true
	// true k 3
	// true
}

// Map runs a Func on many inputs in its children, a bounded number at
// once, and returns the results in input order.
func ExampleFunction_Map() {
	ctx := context.Background()
	defer hash.Close()
	sums, err := hash.Map(ctx, []string{"a", "b", "a"}, procxy.InFlight(2))
	fmt.Println(sums[0] == sums[2], sums[0] != sums[1], err)
	// Output: true true <nil>
}

// Map on a pool calls one method once per input.
func ExampleMap() {
	ctx := context.Background()
	pool, _ := procxy.NewPool[Greeter](ctx, 2, procxy.Config("Hi"))
	defer pool.Close()
	greetings, err := procxy.Map[string](ctx, pool, "Greet", []string{"Ann", "Bob"})
	fmt.Println(greetings, err)
	// Output: [Hi, Ann! Hi, Bob!] <nil>
}

// A child that has served two calls is replaced by a fresh one, as
// Python's maxtasksperchild does; a child whose call timed out is killed
// shortly after, for a method that ignores its context would run on.
func ExampleRecycling() {
	ctx := context.Background()
	p, err := procxy.New[Leaky](ctx, procxy.Logger(slog.New(slog.DiscardHandler)),
		procxy.Recycling(procxy.Recycle{Calls: 2, KillOnTimeout: 100 * time.Millisecond}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	a, _ := procxy.Call[int](ctx, p, "PID")
	b, _ := procxy.Call[int](ctx, p, "PID")
	c, _ := procxy.Call[int](ctx, p, "PID")
	fmt.Println("first two calls in one child:", a == b)
	fmt.Println("third call in a new child:", c != b)
	// Output:
	// first two calls in one child: true
	// third call in a new child: true
}
