package ipctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"sync/atomic"
	"testing"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/rpc/codec"
)

var rawCodec = codec.Raw

func countTo(ctx context.Context, n int) iter.Seq2[int, error] {
	return func(yield func(int, error) bool) {
		for i := range n {
			if !yield(i, nil) {
				return
			}
		}
	}
}

func testStream(t *testing.T, b Backend) {
	resp, req := b.Connect(t), b.Connect(t)
	ipc.HandleStream(resp, "count", countTo)
	ipc.HandleStream(resp, "failing", func(ctx context.Context, n int) iter.Seq2[int, error] {
		return func(yield func(int, error) bool) {
			for i := range n {
				if !yield(i, nil) {
					return
				}
			}
			yield(0, &ipc.RemoteError{Code: "E_HALF", Message: "failed after the values"})
		}
	})
	resp.Subscribe("single", func(m *ipc.Msg) { m.Respond([]byte("one")) })
	flush(t, resp)
	const n = 5000
	i := 0
	for v, err := range ipc.Stream[int](t.Context(), req, "count", n) {
		if err != nil {
			t.Fatal(err)
		}
		if v != i {
			t.Fatalf("value %d is %d", i, v)
		}
		i++
	}
	if i != n {
		t.Fatalf("got %d values, want %d", i, n)
	}
	var got []int
	var last error
	for v, err := range ipc.Stream[int](t.Context(), req, "failing", 3) {
		if err != nil {
			last = err
			break
		}
		got = append(got, v)
	}
	if len(got) != 3 || !errors.Is(last, &ipc.RemoteError{Code: "E_HALF"}) {
		t.Errorf("failing stream: got %v then %v", got, last)
	}
	// A responder that answers once gives a stream of one.
	var msgs []string
	for m, err := range req.RequestStream(t.Context(), &ipc.Msg{Subject: "single"}) {
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, string(m.Data))
	}
	if len(msgs) != 1 || msgs[0] != "one" {
		t.Errorf("single: got %q", msgs)
	}
	for _, err := range req.RequestStream(t.Context(), &ipc.Msg{Subject: "no.stream.here"}) {
		if !errors.Is(err, ipc.ErrNoResponders) {
			t.Errorf("stream to nobody: %v", err)
		}
	}
}

func testStreamBreak(t *testing.T, b Backend) {
	resp, req := b.Connect(t), b.Connect(t)
	ended := make(chan error, 1)
	ipc.HandleStream(resp, "endless", func(ctx context.Context, _ int) iter.Seq2[int, error] {
		return func(yield func(int, error) bool) {
			defer func() { ended <- ctx.Err() }()
			for i := 0; ; i++ {
				if !yield(i, nil) {
					return
				}
			}
		}
	})
	flush(t, resp)
	for v, err := range ipc.Stream[int](t.Context(), req, "endless", 0) {
		if err != nil {
			t.Fatal(err)
		}
		if v == 10 {
			break
		}
	}
	<-ended // the producer stopped; no goroutine keeps producing
}

func testStreamFlowControl(t *testing.T, b Backend) {
	resp, req := b.Connect(t), b.Connect(t)
	var consumed atomic.Int64
	var sent atomic.Int64
	atLimit := make(chan struct{})
	ahead := make(chan int64, 1)
	ipc.HandleStream(resp, "fast", func(ctx context.Context, n int) iter.Seq2[[]byte, error] {
		return func(yield func([]byte, error) bool) {
			chunk := make([]byte, 1024)
			for i := range n {
				if i == ipc.DefaultWindow {
					close(atLimit) // a window's worth is out: this send waits for credit
				}
				if !yield(chunk, nil) {
					return
				}
				if a := sent.Add(1) - consumed.Load(); a > ipc.DefaultWindow+1 {
					select {
					case ahead <- a:
					default:
					}
				}
			}
		}
	})
	flush(t, resp)
	n := 0
	for _, err := range ipc.Stream[[]byte](t.Context(), req, "fast", 4*ipc.DefaultWindow) {
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			<-atLimit // the producer ran ahead as far as it may while we did not read
		}
		consumed.Add(1)
		n++
	}
	select {
	case a := <-ahead:
		t.Errorf("the producer got %d chunks ahead of the consumer; the window is %d", a, ipc.DefaultWindow)
	default:
	}
	if n != 4*ipc.DefaultWindow {
		t.Errorf("got %d chunks", n)
	}
}

func testUpload(t *testing.T, b Backend) {
	resp, req := b.Connect(t), b.Connect(t)
	ipc.HandleUpload(resp, "store", func(ctx context.Context, open *ipc.Msg, chunks iter.Seq2[[]byte, error]) (string, error) {
		var total, count int
		for data, err := range chunks {
			if err != nil {
				return "", err
			}
			total += len(data)
			count++
		}
		return fmt.Sprintf("%s:%d:%d", open.Data, count, total), nil
	})
	resp.Subscribe("refuse", func(m *ipc.Msg) {
		m.RespondMsg(&ipc.Msg{Data: []byte("no")})
	})
	flush(t, resp)
	up, err := req.Upload(t.Context(), &ipc.Msg{Subject: "store", Data: []byte("file")})
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("u"), 1000)
	for range 200 {
		if err := up.Send(chunk); err != nil {
			t.Fatal(err)
		}
	}
	m, err := up.Close()
	if err != nil {
		t.Fatal(err)
	}
	v, err := ipc.Decode[string](m, nil)
	if err != nil || v != "file:200:200000" {
		t.Errorf("upload answer = %q, %v", v, err)
	}
}

func testMaxPayload(t *testing.T, b Backend) {
	c := b.Connect(t)
	max := c.MaxPayload()
	if max <= 0 {
		t.Fatalf("MaxPayload = %d", max)
	}
	big := make([]byte, max+1)
	if err := c.Publish("big", big); !errors.Is(err, ipc.ErrMaxPayload) {
		t.Errorf("Publish(max+1) = %v, want ErrMaxPayload", err)
	}
	if _, err := c.Request(t.Context(), "big", big); !errors.Is(err, ipc.ErrMaxPayload) {
		t.Errorf("Request(max+1) = %v, want ErrMaxPayload", err)
	}
	sub := b.Connect(t)
	got := make(chan int, 1)
	sub.Subscribe("big", func(m *ipc.Msg) { got <- len(m.Data) })
	flush(t, sub)
	if err := c.Publish("big", big[:max-64]); err != nil { // a little room for headers
		t.Fatalf("Publish(max-64) = %v", err)
	}
	if n := <-got; n != max-64 {
		t.Errorf("delivered %d bytes, want %d", n, max-64)
	}
}

func testBigMessages(t *testing.T, b Backend) {
	resp, req := b.Connect(t), b.Connect(t)
	ipc.Handle(resp, "echo", func(ctx context.Context, p []byte) ([]byte, error) { return p, nil }, ipc.WithCodec(rawCodec))
	ipc.Handle(resp, "size", func(ctx context.Context, p []byte) (int, error) { return len(p), nil })
	ipc.Handle(resp, "make", func(ctx context.Context, n int) ([]byte, error) { return bytes.Repeat([]byte("m"), n), nil })
	flush(t, resp)
	max := req.MaxPayload()
	big := make([]byte, 3*max+17)
	for i := range big {
		big[i] = byte(i * 7)
	}
	out, err := ipc.Call[[]byte](t.Context(), req, "echo", big, ipc.WithCodec(rawCodec))
	if err != nil || !bytes.Equal(out, big) {
		t.Fatalf("echo of %d bytes: got %d bytes, %v", len(big), len(out), err)
	}
	n, err := ipc.Call[int](t.Context(), req, "size", big)
	if err != nil || n != len(big) {
		t.Fatalf("size = %d, %v", n, err)
	}
	mk, err := ipc.Call[[]byte](t.Context(), req, "make", 2*max)
	if err != nil || len(mk) != 2*max {
		t.Fatalf("make = %d bytes, %v", len(mk), err)
	}
}
