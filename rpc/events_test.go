package rpc_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/procxy/procxy/rpc"
)

// TestEventsBeforeAnswer: a child handler that emits events and then
// answers, reaching its connection through rpc.ConnOf: the parent's call
// returns only after the events' handler has run for every one of them,
// 1,000 times in a row; a parent event handler that calls the child does
// not deadlock.
func TestEventsBeforeAnswer(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		const emit, reentrant = 1, 2
		childMux := new(rpc.Mux)
		childMux.Handle(10, rpc.ResultFunc(func(ctx context.Context, n int) (int, error) {
			c := rpc.ConnOf(ctx)
			if c == nil {
				return 0, &rpc.RemoteError{Message: "no connection in the handler's context"}
			}
			for i := range n {
				ev := emit
				if n == 1 {
					ev = reentrant
				}
				if err := c.Send(ctx, rpc.Method{ID: uint16(ev), Kind: rpc.KindNone}, i); err != nil {
					return 0, err
				}
			}
			return n, nil
		}))
		var seen atomic.Int64
		var cli *rpc.Conn
		parentMux := new(rpc.Mux)
		parentMux.Handle(emit, rpc.SendFunc(func(context.Context, int) error { seen.Add(1); return nil }))
		inner := make(chan int64, 1)
		parentMux.Handle(reentrant, rpc.SendFunc(func(ctx context.Context, _ int) error {
			before := seen.Load()
			var got int
			err := cli.Call(context.Background(), rpc.Method{ID: 10}, 3, &got)
			if err != nil {
				inner <- -1
				return err
			}
			inner <- seen.Load() - before
			return nil
		}))
		cli, _ = pair(t, tr, rpc.Options{Handlers: childMux}, rpc.Options{Handlers: parentMux})
		ctx := t.Context()
		for i := range 1000 {
			var got int
			if err := cli.Call(ctx, rpc.Method{ID: 10}, 5, &got); err != nil {
				t.Fatal(err)
			}
			if want := int64(5 * (i + 1)); seen.Load() != want {
				t.Fatalf("call %d returned with %d events handled, want %d", i, seen.Load(), want)
			}
		}
		var got int
		if err := cli.Call(ctx, rpc.Method{ID: 10}, 1, &got); err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-inner:
			if n != 3 {
				t.Errorf("the handler's own call returned with %d of its 3 events handled", n)
			}
		default:
			t.Error("the call returned before its event's handler ran")
		}
	})
}
