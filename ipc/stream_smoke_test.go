package ipc_test

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"testing"

	"github.com/procxy/procxy/ipc"
)

func TestSmokeStreams(t *testing.T) {
	s := newServer(t, ipc.MaxPayload(1024))
	a, b := dial(t, s), dial(t, s)
	ipc.HandleStream(b, "count", func(ctx context.Context, n int) iter.Seq2[int, error] {
		return func(yield func(int, error) bool) {
			for i := range n {
				if !yield(i, nil) {
					return
				}
			}
		}
	})
	ipc.Handle(b, "add", func(ctx context.Context, x [2]int) (int, error) {
		if x[0] < 0 {
			return 0, &ipc.RemoteError{Code: "E_NEG", Message: "negative"}
		}
		return x[0] + x[1], nil
	})
	ipc.Handle(b, "echo", func(ctx context.Context, p []byte) ([]byte, error) { return p, nil })
	b.Flush(t.Context())
	var got []int
	for v, err := range ipc.Stream[int](t.Context(), a, "count", 1000) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if len(got) != 1000 || got[999] != 999 {
		t.Fatalf("got %d values", len(got))
	}
	sum, err := ipc.Call[int](t.Context(), a, "add", [2]int{2, 3})
	if err != nil || sum != 5 {
		t.Fatalf("add = %v, %v", sum, err)
	}
	_, err = ipc.Call[int](t.Context(), a, "add", [2]int{-1, 3})
	var re *ipc.RemoteError
	if !errors.As(err, &re) || re.Code != "E_NEG" {
		t.Fatalf("add(-1) err = %v", err)
	}
	big := bytes.Repeat([]byte("0123456789"), 1000)
	out, err := ipc.Call[[]byte](t.Context(), a, "echo", big)
	if err != nil || !bytes.Equal(out, big) {
		t.Fatalf("big echo: %d bytes, %v", len(out), err)
	}
	if err := a.Publish("x", big); !errors.Is(err, ipc.ErrMaxPayload) {
		t.Fatalf("big publish: %v", err)
	}
}

func TestSmokeChannel(t *testing.T) {
	s := newServer(t)
	a, b := dial(t, s), dial(t, s)
	l, err := ipc.ListenChannel[string](b, "chat")
	if err != nil {
		t.Fatal(err)
	}
	b.Flush(t.Context())
	done := make(chan error, 1)
	go func() {
		ch, err := l.Accept(t.Context())
		if err != nil {
			done <- err
			return
		}
		for v, err := range ch.All(t.Context()) {
			if err != nil {
				done <- err
				return
			}
			if err := ch.Send(t.Context(), "re:"+v); err != nil {
				done <- err
				return
			}
		}
		done <- ch.Close()
	}()
	ch, err := ipc.OpenChannel[string](t.Context(), a, "chat")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"a", "b", "c"} {
		if err := ch.Send(t.Context(), w); err != nil {
			t.Fatal(err)
		}
		v, err := ch.Recv(t.Context())
		if err != nil || v != "re:"+w {
			t.Fatalf("Recv = %q, %v", v, err)
		}
	}
	ch.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
