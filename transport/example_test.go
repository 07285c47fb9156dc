//go:build unix

package transport_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"sync"

	"github.com/procxy/procxy/transport"
)

func ExampleListenPrivate() {
	ln, err := transport.ListenPrivate("example")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close() // also removes the socket file

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { // echo server for one connection
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	})

	c, err := transport.Dial(context.Background(), "unix", ln.Path())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintln(c, "hello")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(line)
	// Output: hello
}

func ExamplePipe() {
	a, b := transport.Pipe()
	defer b.Close()
	// Unlike net.Pipe, the write returns before anyone reads.
	fmt.Fprint(a, "buffered")
	a.Close()
	got, _ := io.ReadAll(b)
	fmt.Println(string(got))
	// Output: buffered
}
