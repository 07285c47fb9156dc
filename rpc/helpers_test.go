package rpc_test

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/transport"
)

// Method ids of the test service.
const (
	mEcho uint16 = iota + 1
	mEchoRaw
	mFail
	mCount
	mSlow
	mAccept
	mNotify
	mPanic
	mCrash
	mAdd
	mAbortSeen
	mInfinite
	mHang
)

var (
	echo     = rpc.Method{ID: mEcho}
	echoRaw  = rpc.Method{ID: mEchoRaw, Request: codec.Raw, Response: codec.Raw}
	fail     = rpc.Method{ID: mFail}
	count    = rpc.Method{ID: mCount, Kind: rpc.KindStream}
	slow     = rpc.Method{ID: mSlow}
	accept   = rpc.Method{ID: mAccept, Kind: rpc.KindAck}
	notify   = rpc.Method{ID: mNotify, Kind: rpc.KindNone}
	panicker = rpc.Method{ID: mPanic}
	crash    = rpc.Method{ID: mCrash, Kind: rpc.KindNone}
	add      = rpc.Method{ID: mAdd}
	aborts   = rpc.Method{ID: mAbortSeen}
	infinite = rpc.Method{ID: mInfinite, Kind: rpc.KindStream, Response: codec.Raw}
	hang     = rpc.Method{ID: mHang, Kind: rpc.KindStream}
)

type addArgs struct {
	A, B int
}

// service builds the test service. aborted receives the request of every
// slow call whose context was cancelled; notified receives notify inputs.
type service struct {
	aborted  chan int
	notified chan string
	produced chan int // infinite: number of chunks sent so far, updated per chunk
}

func newService() *service {
	return &service{aborted: make(chan int, 100), notified: make(chan string, 100), produced: make(chan int, 1)}
}

func (s *service) mux() *rpc.Mux {
	m := new(rpc.Mux)
	m.Handle(mEcho, rpc.ResultFunc(func(_ context.Context, v any) (any, error) { return v, nil }))
	m.Handle(mEchoRaw, rpc.ResultFunc(func(_ context.Context, b []byte) ([]byte, error) { return b, nil }).WithCodec(codec.Raw))
	m.Handle(mFail, rpc.ResultFunc(func(_ context.Context, msg string) (any, error) {
		return nil, &rpc.RemoteError{Message: msg, Code: "E_FAIL"}
	}))
	m.Handle(mCount, rpc.StreamFunc(func(_ context.Context, n int, send func(int) error) error {
		for i := range n {
			if err := send(i); err != nil {
				return err
			}
		}
		return nil
	}))
	m.Handle(mSlow, rpc.ResultFunc(func(ctx context.Context, ms int) (int, error) {
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
			return ms, nil
		case <-ctx.Done():
			s.aborted <- ms
			return 0, ctx.Err()
		}
	}))
	m.Handle(mAccept, rpc.AckFunc(func(_ context.Context, v any) (map[string]bool, error) {
		return map[string]bool{"accepted": true}, nil
	}))
	m.Handle(mNotify, rpc.SendFunc(func(_ context.Context, v string) error {
		s.notified <- v
		return nil
	}))
	m.Handle(mPanic, rpc.ResultFunc(func(context.Context, any) (any, error) {
		var m map[string]int
		m["boom"] = 1 // nil map write: a real runtime panic
		return nil, nil
	}))
	m.Handle(mCrash, rpc.SendFunc(func(context.Context, any) error {
		os.Exit(3)
		return nil
	}))
	m.Handle(mAdd, rpc.ResultFunc(func(_ context.Context, a addArgs) (int, error) { return a.A + a.B, nil }))
	m.Handle(mAbortSeen, rpc.ResultFunc(func(context.Context, any) (int, error) { return len(s.aborted), nil }))
	m.Handle(mInfinite, rpc.StreamFunc(func(ctx context.Context, size int, send func([]byte) error) error {
		chunk := make([]byte, size)
		for i := 1; ; i++ {
			if err := send(chunk); err != nil {
				return err
			}
			select {
			case <-s.produced:
			default:
			}
			s.produced <- i
		}
	}).WithCodecs(codec.Msgpack, codec.Raw))
	m.Handle(mHang, rpc.StreamFunc(func(ctx context.Context, _ any, send func(int) error) error {
		send(0)
		<-ctx.Done()
		return ctx.Err()
	}))
	return m
}

// pair returns a client and a server Conn over an in-memory or socket
// transport; both are closed at the end of the test.
func pair(t testing.TB, tr string, srvOpts, cliOpts rpc.Options) (cli, srv *rpc.Conn) {
	t.Helper()
	a, b := connPair(t, tr)
	srvOpts.Role = rpc.RoleChild
	cliOpts.Role = rpc.RoleParent
	srv = rpc.NewConn(b, srvOpts)
	cli = rpc.NewConn(a, cliOpts)
	t.Cleanup(func() {
		cli.Close()
		srv.Close()
	})
	return cli, srv
}

func connPair(t testing.TB, tr string) (net.Conn, net.Conn) {
	t.Helper()
	switch tr {
	case "pipe":
		a, b := transport.Pipe()
		return a, b
	case "unix":
		l, err := transport.ListenPrivate("rpctest")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() { c, err := l.Accept(); ch <- res{c, err} }()
		a, err := net.Dial("unix", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		return a, r.c
	}
	t.Fatalf("unknown transport %q", tr)
	return nil, nil
}

var transports = []string{"pipe", "unix"}

func isRemote(err error, code string) bool {
	var re *rpc.RemoteError
	return errors.As(err, &re) && re.Code == code
}
