package natsipc_test

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/natsipc"
)

// Connect with no URL starts an embedded nats-server: the program runs
// with nothing installed, and other processes can join at
// c.Info().Server. The code is the same as over ipc.Dial.
func ExampleConnect() {
	ctx := context.Background()
	c, err := natsipc.Connect(ctx, "") // or "nats://host:4222", or a comma-separated list
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	ipc.Handle(c, "greet", func(ctx context.Context, name string) (string, error) {
		return "hello, " + name, nil
	}, ipc.Queue("greeters"))
	c.Flush(ctx) // the server has the subscription: requests from other connections find it

	worker, err := natsipc.Connect(ctx, c.Info().Server)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer worker.Close()
	s, err := ipc.Call[string](ctx, worker, "greet", "NATS")
	fmt.Println(s, err)
	// Output: hello, NATS <nil>
}

// A program that already has a *nats.Conn, made with the nats.go options
// it needs, wraps it.
func ExampleNew() {
	ctx := context.Background()
	srv, err := natsipc.StartServer(ctx, natsipc.ServerOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	nc, err := nats.Connect(srv.URL(), nats.Name("billing"), nats.MaxReconnects(-1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	c, err := natsipc.New(ctx, nc)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close() // nc stays open: it is the program's

	ipc.Handle(c, "add", func(ctx context.Context, xy [2]int) (int, error) { return xy[0] + xy[1], nil })
	c.Flush(ctx)
	fmt.Println(ipc.Call[int](ctx, c, "add", [2]int{2, 3}))
	// Output: 5 <nil>
}
