package worker_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/worker"
)

// A worker with two methods and an event, driven by an in-process parent
// that does what @procwire/core does: read $init from the worker's stdout,
// connect to the announced socket, call, and send $shutdown. A real worker
// leaves Stdin and Stdout nil (os.Stdin, os.Stdout) and calls Run from main.
func Example() {
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	w := worker.New(worker.Options{Stdin: stdinR, Stdout: stdoutW, Logger: slog.New(slog.DiscardHandler)})
	done := worker.Event[string](w, "done")
	worker.Result(w, "add", func(ctx context.Context, in [2]int) (int, error) {
		return in[0] + in[1], done.Emit(ctx, "added")
	})
	worker.Stream(w, "count", func(_ context.Context, n int, send func(int) error) error {
		for i := range n {
			if err := send(i); err != nil {
				return err
			}
		}
		return nil
	})
	ran := make(chan error, 1)
	go func() { ran <- w.Run(context.Background()) }()

	// The parent.
	line, _ := bufio.NewReader(stdoutR).ReadString('\n')
	var init struct {
		Params struct {
			Pipe   string
			Schema json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(line), &init); err != nil {
		panic(err)
	}
	fmt.Println("schema:", string(init.Params.Schema))
	c, err := net.Dial("unix", init.Params.Pipe)
	if err != nil {
		panic(err)
	}
	parent := rpc.NewConn(c, rpc.Options{})
	var sum int
	err = parent.Call(context.Background(), rpc.Method{ID: 1}, [2]int{2, 3}, &sum)
	fmt.Println("add:", sum, err)
	for i, err := range rpc.StreamOf[int](context.Background(), parent, rpc.Method{ID: 2, Kind: rpc.KindStream}, 3) {
		fmt.Println("count:", i, err)
	}
	io.WriteString(stdinW, `{"jsonrpc":"2.0","method":"$shutdown","params":{}}`+"\n")
	fmt.Println("Run:", <-ran)
	parent.Close()
	stdinW.Close()
	stdoutR.Close()
	// Output:
	// schema: {"methods":{"add":{"id":1,"response":"result"},"count":{"id":2,"response":"stream"}},"events":{"done":{"id":1}}}
	// add: 5 <nil>
	// count: 0 <nil>
	// count: 1 <nil>
	// count: 2 <nil>
	// Run: <nil>
}
