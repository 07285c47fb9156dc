package host_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/host/internal/testworker"
	"github.com/procxy/procxy/rpc"
)

// This example runs a worker — here the test binary itself, which TestMain
// turns into a small Procwire worker — and calls it.
func Example() {
	m, err := host.NewModule(host.Config{
		Name:       "echo",
		Executable: os.Args[0],
		Env:        []string{testworker.EnvMode + "=" + testworker.ModeOK},
		Methods: []host.Method{
			{Name: "echo"},
			{Name: "count", Kind: rpc.KindStream},
			{Name: "notify", Kind: rpc.KindNone},
		},
		Events: []host.Event{{Name: "notified"}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := m.Spawn(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer m.Shutdown(ctx)

	s, err := host.Call[string](ctx, m, "echo", "hello")
	fmt.Println(s, err)

	type chunk struct {
		I int `msgpack:"i"`
	}
	for c, err := range host.Stream[chunk](ctx, m, "count", map[string]int{"n": 3}) {
		fmt.Println("chunk", c.I, err)
	}

	got := make(chan string, 1)
	remove := host.OnEvent(m, "notified", func(s string) { got <- s })
	defer remove()
	host.Send(ctx, m, "notify", "ping")
	fmt.Println("event", <-got)

	_, err = host.Call[any](ctx, m, "nope", nil)
	fmt.Println(err)
	// Output:
	// hello <nil>
	// chunk 0 <nil>
	// chunk 1 <nil>
	// chunk 2 <nil>
	// event ping
	// host: method not declared: module "echo" has no method "nope" (Call)
}

// A Manager spawns and stops modules together and reports their state
// changes in one place.
func ExampleManager() {
	states := make(chan host.State, 16)
	mg := host.NewManager(host.ManagerOptions{OnChange: func(c host.Change) { states <- c.To }})
	m, err := host.NewModule(host.Config{
		Name:       "echo",
		Executable: os.Args[0],
		Env:        []string{testworker.EnvMode + "=" + testworker.ModeOK},
		Methods:    []host.Method{{Name: "echo"}},
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	mg.Register(m)
	ctx := context.Background()
	if err := mg.Spawn(ctx); err != nil {
		fmt.Println(err)
		return
	}
	n, err := host.Call[int](ctx, mg.Module("echo"), "echo", 42)
	fmt.Println(n, err)
	mg.Shutdown(ctx)
	for st := range states {
		fmt.Println(st)
		if st == host.StateClosed {
			break
		}
	}
	// Output:
	// 42 <nil>
	// starting
	// connecting
	// ready
	// stopping
	// closed
}
