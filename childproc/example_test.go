//go:build linux

package childproc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/procxy/procxy/childproc"
)

func ExampleExec() {
	ctx := context.Background()
	stdout, _, err := childproc.Exec(ctx, "echo hello; exit 3", childproc.Options{})
	fmt.Printf("%q\n", stdout)

	var ee *childproc.ExitError
	if errors.As(err, &ee) {
		fmt.Println("exit code:", ee.Code)
	}
	// Output:
	// "hello\n"
	// exit code: 3
}

func ExampleSpawn() {
	ctx := context.Background()
	c, err := childproc.Spawn(ctx, "tr", []string{"a-z", "A-Z"}, childproc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	io.WriteString(c.Stdin(), "shout\n")
	c.Stdin().Close()
	out, _ := io.ReadAll(c.Stdout())
	if err := c.Wait(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s", out)
	// Output: SHOUT
}

func ExampleFork() {
	ctx := context.Background()
	// testdata/double.cjs: process.on('message', (m) => process.send({doubled: m.n * 2}))
	c, err := childproc.Fork(ctx, "testdata/double.cjs", nil, childproc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	ch := c.Channel()
	if err := ch.Send(ctx, map[string]int{"n": 21}); err != nil {
		log.Fatal(err)
	}
	var reply struct{ Doubled int }
	json.Unmarshal(<-ch.Messages(), &reply)
	fmt.Println(reply.Doubled)

	ch.Disconnect() // the Node child has nothing left to do and exits
	if err := c.Wait(ctx); err != nil {
		log.Fatal(err)
	}
	// Output: 42
}

// A Go program started by Node's fork() (or by childproc with
// Options.IPC) talks back through Parent.
func ExampleParent() {
	ctx := context.Background()
	parent, err := childproc.Parent()
	if err != nil {
		log.Fatal(err)
	}
	if parent == nil {
		return // not started with an IPC channel
	}
	for m := range parent.Messages() { // ends when the parent disconnects or exits
		if err := parent.Send(ctx, map[string]json.RawMessage{"echo": m}); err != nil {
			log.Fatal(err)
		}
	}
}
