package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"

	"github.com/procxy/procxy/ipc"
)

// A server, a handler in the server process, and a client calling it.
func Example() {
	ctx := context.Background()
	srv, err := ipc.Listen(ctx, "tcp://127.0.0.1:0") // or ipc.Listen(ctx, "myapp"): a private Unix socket
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	ipc.Handle(srv.Conn(), "calc.add", func(ctx context.Context, x [2]int) (int, error) {
		return x[0] + x[1], nil
	})

	c, err := ipc.Dial(ctx, srv.Addr())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	sum, err := ipc.Call[int](ctx, c, "calc.add", [2]int{2, 3})
	fmt.Println(sum, err)
	// Output: 5 <nil>
}

// startExample returns a server and two clients of it.
func startExample() (srv *ipc.Server, a, b *ipc.Conn, stop func()) {
	ctx := context.Background()
	srv, err := ipc.Listen(ctx, "tcp://127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	a, err = ipc.Dial(ctx, srv.Addr())
	if err != nil {
		panic(err)
	}
	b, err = ipc.Dial(ctx, srv.Addr())
	if err != nil {
		panic(err)
	}
	return srv, a, b, func() { a.Close(); b.Close(); srv.Close() }
}

// Subscriptions with wildcards: "*" is one token, ">" the rest.
func ExampleConn_Subscribe() {
	_, pub, sub, stop := startExample()
	defer stop()
	var wg sync.WaitGroup
	wg.Add(3)
	sub.Subscribe("sensors.*.temp", func(m *ipc.Msg) {
		fmt.Printf("temp %s: %s\n", m.Subject, m.Data)
		wg.Done()
	})
	sub.Flush(context.Background()) // the server has the subscription
	pub.Publish("sensors.kitchen.temp", []byte("21.5"))
	pub.Publish("sensors.kitchen.humidity", []byte("40")) // not matched
	pub.Publish("sensors.garage.temp", []byte("12.0"))
	pub.Publish("sensors.attic.temp", []byte("30.1"))
	wg.Wait()
	// Output:
	// temp sensors.kitchen.temp: 21.5
	// temp sensors.garage.temp: 12.0
	// temp sensors.attic.temp: 30.1
}

// A queue group shares the messages of a subject: each goes to one member.
func ExampleConn_QueueSubscribe() {
	srv, pub, _, stop := startExample()
	defer stop()
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(10)
	handled := 0
	for range 3 {
		w, _ := ipc.Dial(context.Background(), srv.Addr())
		defer w.Close()
		w.QueueSubscribe("jobs", "workers", func(m *ipc.Msg) {
			mu.Lock()
			handled++
			mu.Unlock()
			wg.Done()
		})
		w.Flush(context.Background())
	}
	for i := range 10 {
		pub.Publish("jobs", []byte{byte(i)})
	}
	wg.Wait()
	fmt.Println("handled", handled, "jobs once each")
	// Output: handled 10 jobs once each
}

// Cancelling a request ends the responder's context too.
func ExampleConn_Request() {
	_, req, resp, stop := startExample()
	defer stop()
	started, stopped := make(chan struct{}), make(chan error)
	resp.Subscribe("report.build", func(m *ipc.Msg) {
		close(started)
		<-m.Context().Done() // a long job that watches its context
		stopped <- m.Context().Err()
	})
	resp.Flush(context.Background())

	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }() // the requester gives up
	_, err := req.Request(ctx, "report.build", nil)
	fmt.Println("requester:", errors.Is(err, context.Canceled))
	fmt.Println("responder:", <-stopped)

	_, err = req.Request(context.Background(), "nobody.listens", nil)
	fmt.Println(errors.Is(err, ipc.ErrNoResponders))
	// Output:
	// requester: true
	// responder: context canceled
	// true
}

// Errors a handler returns reach the caller as *RemoteError.
func ExampleHandle() {
	_, client, service, stop := startExample()
	defer stop()
	ipc.Handle(service, "accounts.withdraw", func(ctx context.Context, amount int) (int, error) {
		if amount > 100 {
			return 0, &ipc.RemoteError{Code: "E_FUNDS", Message: "insufficient funds"}
		}
		return 100 - amount, nil
	}, ipc.Queue("accounts"))
	service.Flush(context.Background())

	left, err := ipc.Call[int](context.Background(), client, "accounts.withdraw", 30)
	fmt.Println(left, err)
	_, err = ipc.Call[int](context.Background(), client, "accounts.withdraw", 300)
	var re *ipc.RemoteError
	fmt.Println(errors.As(err, &re), re.Code, re.Message)
	// Output:
	// 70 <nil>
	// true E_FUNDS insufficient funds
}

// A streamed reply, with flow control: the producer never runs more than a
// window ahead of the consumer.
func ExampleStream() {
	_, client, service, stop := startExample()
	defer stop()
	ipc.HandleStream(service, "numbers.squares", func(ctx context.Context, n int) iter.Seq2[int, error] {
		return func(yield func(int, error) bool) {
			for i := 1; i <= n; i++ {
				if !yield(i*i, nil) {
					return // the consumer stopped: ctx is cancelled too
				}
			}
		}
	})
	service.Flush(context.Background())
	var got []int
	for v, err := range ipc.Stream[int](context.Background(), client, "numbers.squares", 5) {
		if err != nil {
			panic(err)
		}
		got = append(got, v)
	}
	fmt.Println(got)
	// Output: [1 4 9 16 25]
}

// An upload: the request's body travels as chunks.
func ExampleConn_Upload() {
	_, client, service, stop := startExample()
	defer stop()
	ipc.HandleUpload(service, "files.put", func(ctx context.Context, open *ipc.Msg, chunks iter.Seq2[[]byte, error]) (int, error) {
		n := 0
		for data, err := range chunks {
			if err != nil {
				return 0, err
			}
			n += len(data)
		}
		return n, nil
	})
	service.Flush(context.Background())
	up, _ := client.Upload(context.Background(), &ipc.Msg{Subject: "files.put", Data: []byte("report.csv")})
	for range 4 {
		up.Send(make([]byte, 1000))
	}
	resp, err := up.Close()
	if err != nil {
		panic(err)
	}
	n, _ := ipc.Decode[int](resp, nil)
	fmt.Println(n, "bytes stored")
	// Output: 4000 bytes stored
}

// A channel: two connections talk both ways until one closes it.
func ExampleOpenChannel() {
	_, a, b, stop := startExample()
	defer stop()
	l, _ := ipc.ListenChannel[string](b, "chat")
	b.Flush(context.Background())
	go func() {
		ch, err := l.Accept(context.Background())
		if err != nil {
			return
		}
		for msg := range ch.All(context.Background()) {
			ch.Send(context.Background(), "echo: "+msg)
		}
		ch.Close()
	}()
	ch, err := ipc.OpenChannel[string](context.Background(), a, "chat")
	if err != nil {
		panic(err)
	}
	for _, s := range []string{"hi", "bye"} {
		ch.Send(context.Background(), s)
		r, _ := ch.Recv(context.Background())
		fmt.Println(r)
	}
	ch.Close()
	// Output:
	// echo: hi
	// echo: bye
}

// The server reaches every client, whatever they subscribe to.
func ExampleServer_Broadcast() {
	srv, err := ipc.Listen(context.Background(), "tcp://127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	var mu sync.Mutex
	var got []string
	var wg sync.WaitGroup
	wg.Add(2)
	for i := range 2 {
		c, _ := ipc.Dial(context.Background(), srv.Addr(), ipc.OnBroadcast(func(m *ipc.Msg) {
			mu.Lock()
			got = append(got, fmt.Sprintf("client %d: %s %s", i, m.Subject, m.Data))
			mu.Unlock()
			wg.Done()
		}))
		defer c.Close()
		c.Flush(context.Background())
	}
	srv.Broadcast("maintenance", []byte("in 5 minutes"))
	wg.Wait()
	slices.Sort(got)
	for _, s := range got {
		fmt.Println(s)
	}
	// Output:
	// client 0: maintenance in 5 minutes
	// client 1: maintenance in 5 minutes
}

// A typed topic.
func ExampleNewTopic() {
	type Order struct {
		ID    int
		Total float64
	}
	_, pub, sub, stop := startExample()
	defer stop()
	got := make(chan Order)
	ipc.NewTopic[Order](sub, "orders.created").Subscribe(func(ctx context.Context, o Order) error {
		got <- o
		return nil
	})
	sub.Flush(context.Background())
	ipc.NewTopic[Order](pub, "orders.created").Publish(Order{ID: 7, Total: 19.5})
	fmt.Printf("%+v\n", <-got)
	// Output: {ID:7 Total:19.5}
}

// A must-deliver publish that reached nobody goes to the dead-letter
// queue, and can be replayed once someone listens.
func ExampleDeadLetterQueue() {
	_, pub, sub, stop := startExample()
	defer stop()
	ctx := context.Background()
	err := pub.PublishSync(ctx, ipc.NewMsg("audit.log", []byte("login alice")))
	fmt.Println(errors.Is(err, ipc.ErrNoSubscribers), pub.DeadLetters().Len())

	got := make(chan string, 1)
	sub.Subscribe("audit.log", func(m *ipc.Msg) { got <- string(m.Data) })
	sub.Flush(ctx)
	n, err := pub.DeadLetters().Replay(ctx, nil)
	fmt.Println(n, err, <-got)
	// Output:
	// true 1
	// 1 <nil> login alice
}
