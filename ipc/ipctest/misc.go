package ipctest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procxy/procxy/ipc"
)

func testPublishSync(t *testing.T, b Backend) {
	pub, sub := b.Connect(t), b.Connect(t)
	got := make(chan struct{}, 1)
	sub.Subscribe("sync.yes", func(*ipc.Msg) { got <- struct{}{} })
	flush(t, sub)
	if err := pub.PublishSync(t.Context(), ipc.NewMsg("sync.yes", []byte("x"))); err != nil {
		t.Fatalf("PublishSync with a subscriber: %v", err)
	}
	<-got
	err := pub.PublishSync(t.Context(), ipc.NewMsg("sync.no", []byte("x")))
	if !b.Features().RoutingAcks {
		if err != nil {
			t.Errorf("PublishSync without routing acks: %v", err)
		}
		return
	}
	if !errors.Is(err, ipc.ErrNoSubscribers) {
		t.Fatalf("PublishSync to nobody = %v, want ErrNoSubscribers", err)
	}
	dl := pub.DeadLetters().List()
	if len(dl) != 1 || dl[0].Reason != ipc.ReasonNoSubscribers || dl[0].Msg.Subject != "sync.no" {
		t.Fatalf("dead letters = %+v", dl)
	}
	// Replay once someone listens.
	sub.Subscribe("sync.no", func(*ipc.Msg) { got <- struct{}{} })
	flush(t, sub)
	n, err := pub.DeadLetters().Replay(t.Context(), nil)
	if err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	<-got
	if pub.DeadLetters().Len() != 0 {
		t.Error("a replayed dead letter stayed in the queue")
	}
}

func testDeadLetters(t *testing.T, b Backend) {
	c, watcher := b.Connect(t), b.Connect(t)
	dead := make(chan *ipc.Msg, 4)
	watcher.Subscribe("$IPC.DLQ.>", func(m *ipc.Msg) { dead <- m })
	flush(t, watcher)
	var tries atomic.Int64
	topic := ipc.NewTopic[int](c, "jobs.x")
	topic.Subscribe(func(ctx context.Context, v int) error {
		tries.Add(1)
		return errors.New("cannot do it")
	}, ipc.Attempts(3))
	flush(t, c)
	if err := topic.Publish(42); err != nil {
		t.Fatal(err)
	}
	m := <-dead
	if m.Subject != "$IPC.DLQ.handler_failed" || m.Header.Get(ipc.HeaderDLQSubject) != "jobs.x" || m.Header.Get(ipc.HeaderDLQError) != "cannot do it" {
		t.Errorf("dead letter message = %v %v", m, m.Header)
	}
	if tries.Load() != 3 {
		t.Errorf("the handler ran %d times, want 3", tries.Load())
	}
	if l := c.DeadLetters().List(); len(l) != 1 || l[0].Reason != ipc.ReasonHandlerFailed {
		t.Errorf("dead letters = %+v", l)
	}
	// An expired message is not handled.
	handled := make(chan struct{}, 1)
	c.Subscribe("ttl", func(*ipc.Msg) { handled <- struct{}{} })
	flush(t, c)
	watcher.PublishMsg(&ipc.Msg{Subject: "ttl", Expires: time.Now().Add(-time.Second)})
	m = <-dead
	if m.Subject != "$IPC.DLQ.expired" {
		t.Errorf("expired message went to %s", m.Subject)
	}
	select {
	case <-handled:
		t.Error("an expired message was handled")
	default:
	}
}

func testChannel(t *testing.T, b Backend) {
	a, z := b.Connect(t), b.Connect(t)
	l, err := ipc.ListenChannel[int](z, "pairs")
	if err != nil {
		t.Fatal(err)
	}
	flush(t, z)
	done := make(chan error, 1)
	go func() {
		ch, err := l.Accept(t.Context())
		if err != nil {
			done <- err
			return
		}
		sum := 0
		for v, err := range ch.All(t.Context()) {
			if err != nil {
				done <- err
				return
			}
			sum += v
			if err := ch.Send(t.Context(), sum); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	ch, err := ipc.OpenChannel[int](t.Context(), a, "pairs")
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for i := range 200 {
		if err := ch.Send(t.Context(), i); err != nil {
			t.Fatal(err)
		}
		want += i
		got, err := ch.Recv(t.Context())
		if err != nil || got != want {
			t.Fatalf("Recv = %d, %v; want %d", got, err, want)
		}
	}
	ch.Close()
	if err := <-done; err != nil { // the acceptor saw the close as the end
		t.Fatal(err)
	}
	if _, err := ipc.OpenChannel[int](t.Context(), a, "nobody"); !errors.Is(err, ipc.ErrNoResponders) {
		t.Errorf("OpenChannel to nobody = %v", err)
	}
}

func testChannelPeerGone(t *testing.T, b Backend) {
	for _, who := range []string{"opener", "acceptor"} {
		t.Run(who+"-closes-conn", func(t *testing.T) {
			a, z := b.Connect(t), b.Connect(t)
			hb := ipc.ChannelHeartbeat(50 * time.Millisecond)
			l, _ := ipc.ListenChannel[string](z, "gone", hb)
			flush(t, z)
			accepted := make(chan *ipc.Channel[string], 1)
			go func() {
				ch, err := l.Accept(t.Context())
				if err == nil {
					accepted <- ch
				}
			}()
			ch, err := ipc.OpenChannel[string](t.Context(), a, "gone", hb)
			if err != nil {
				t.Fatal(err)
			}
			other := <-accepted
			survivor := other
			if who == "opener" {
				a.Close()
			} else {
				z.Close()
				survivor = ch
			}
			<-survivor.Done()
			if _, err := survivor.Recv(t.Context()); !errors.Is(err, ipc.ErrChannelClosed) {
				t.Errorf("Recv after the peer went = %v, want ErrChannelClosed", err)
			}
			if err := survivor.Send(t.Context(), "x"); !errors.Is(err, ipc.ErrChannelClosed) {
				t.Errorf("Send after the peer went = %v, want ErrChannelClosed", err)
			}
		})
	}
}

func testDrain(t *testing.T, b Backend) {
	sub, pub := b.Connect(t), b.Connect(t)
	release := make(chan struct{})
	var handled atomic.Int64
	sub.Subscribe("work", func(*ipc.Msg) {
		<-release
		handled.Add(1)
	})
	started := make(chan struct{})
	ipc.Handle(sub, "req", func(ctx context.Context, x int) (int, error) {
		close(started)
		<-release
		return x + 1, nil
	})
	flush(t, sub)
	for range 50 {
		pub.Publish("work", nil)
	}
	flush(t, pub)
	answer := make(chan error, 1)
	go func() {
		v, err := ipc.Call[int](t.Context(), pub, "req", 1)
		if err == nil && v != 2 {
			err = errors.New("wrong answer")
		}
		answer <- err
	}()
	<-started
	flush(t, sub) // all 50 messages are queued before the drain starts
	drained := make(chan error, 1)
	go func() { drained <- sub.Drain(t.Context()) }()
	close(release)
	if err := <-drained; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if handled.Load() != 50 {
		t.Errorf("handled %d of 50 queued messages", handled.Load())
	}
	if err := <-answer; err != nil {
		t.Errorf("the request in flight: %v", err)
	}
	if err := sub.Publish("x", nil); !errors.Is(err, ipc.ErrClosed) {
		t.Errorf("Publish after Drain = %v, want ErrClosed", err)
	}
	if sub.State() != ipc.StateClosed {
		t.Errorf("state after Drain = %v", sub.State())
	}
}

func testClose(t *testing.T, b Backend) {
	c := b.Connect(t)
	waiting := make(chan error, 1)
	c.Subscribe("loop", func(m *ipc.Msg) {})
	ipc.Handle(c, "never", func(ctx context.Context, x int) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
	flush(t, c)
	other := b.Connect(t)
	arrived := make(chan struct{})
	other.Subscribe("hang", func(*ipc.Msg) { close(arrived) })
	flush(t, other)
	go func() {
		_, err := c.Request(context.Background(), "hang", nil)
		waiting <- err
	}()
	<-arrived
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; !errors.Is(err, ipc.ErrClosed) {
		t.Errorf("a request pending at Close got %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c.Subscribe("x", func(*ipc.Msg) {}); !errors.Is(err, ipc.ErrClosed) {
		t.Errorf("Subscribe after Close = %v", err)
	}
	if _, err := c.Request(t.Context(), "x", nil); !errors.Is(err, ipc.ErrClosed) {
		t.Errorf("Request after Close = %v", err)
	}
}
