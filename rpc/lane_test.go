package rpc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/procxy/procxy/internal/lane"
	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/rpc/wire"
	"github.com/procxy/procxy/transport"
)

// unixPair returns two connected ends of a socketpair as net.Conns.
func unixPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	pf, cf, err := transport.Socketpair()
	if err != nil {
		t.Skip("no socketpair here:", err)
	}
	a, err := transport.FileConn(pf)
	pf.Close()
	if err != nil {
		t.Fatal(err)
	}
	b, err := transport.FileConn(cf)
	cf.Close()
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// lanePair is pair over a socketpair with the lane on at both ends.
func lanePair(t *testing.T, min, size int) (cli, srv *rpc.Conn) {
	t.Helper()
	a, b := unixPair(t)
	srv = rpc.NewConn(b, rpc.Options{Role: rpc.RoleChild, Handlers: laneMux(), SharedMemory: true, SharedMemoryMin: min, SharedMemorySize: size})
	cli = rpc.NewConn(a, rpc.Options{Role: rpc.RoleParent, SharedMemory: true, SharedMemoryMin: min, SharedMemorySize: size})
	t.Cleanup(func() {
		cli.Close()
		srv.Close()
	})
	return cli, srv
}

var (
	laneRaw     = rpc.Method{ID: 1, Request: codec.Raw, Response: codec.Raw} // served in place (Payload)
	laneBytes   = rpc.Method{ID: 2, Request: codec.Raw, Response: codec.Raw} // a []byte handler
	laneMsgpack = rpc.Method{ID: 3}                                          // msgpack []byte in and out
)

func laneMux() *rpc.Mux {
	m := new(rpc.Mux)
	m.Handle(laneRaw.ID, rpc.ResultFunc(func(_ context.Context, p rpc.Payload) ([]byte, error) { return p.Bytes, nil }).WithCodec(codec.Raw))
	m.Handle(laneBytes.ID, rpc.ResultFunc(func(_ context.Context, b []byte) ([]byte, error) { return b, nil }).WithCodec(codec.Raw))
	m.Handle(laneMsgpack.ID, rpc.ResultFunc(func(_ context.Context, b []byte) ([]byte, error) { return b, nil }))
	return m
}

// TestLaneSizes: payloads around the lane's threshold, through every kind
// of handler, come back intact, in order, with many calls in flight.
func TestLaneSizes(t *testing.T) {
	if !lane.Supported {
		t.Skip("no shared-memory lane on", runtime.GOOS)
	}
	const min = 64 << 10
	cli, srv := lanePair(t, min, 8<<20)
	if err := cli.Call(t.Context(), laneRaw, []byte("hello"), nil); err != nil {
		t.Fatal(err)
	}
	if !cli.LaneOn() || !srv.LaneOn() {
		t.Fatalf("lane on: parent %v, child %v; want both", cli.LaneOn(), srv.LaneOn())
	}
	sizes := []int{min - 1, min, min + 1, 1 << 20, 3<<20 + 5, 9 << 20} // the last is larger than a region
	var wg sync.WaitGroup
	for g, m := range []rpc.Method{laneRaw, laneBytes, laneMsgpack, laneRaw} {
		wg.Go(func() {
			for i, n := range sizes {
				in := bytes.Repeat([]byte{byte(g*16 + i)}, n)
				var out []byte
				if i%2 == 0 {
					out = make([]byte, 0, n) // read straight into the caller's buffer
				}
				if err := cli.Call(t.Context(), m, in, &out); err != nil {
					t.Errorf("method %d, %d bytes: %v", m.ID, n, err)
					return
				}
				if !bytes.Equal(out, in) {
					t.Errorf("method %d, %d bytes: %d bytes came back different", m.ID, n, len(out))
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestLaneFallback: without memfd, over a transport that is not a Unix
// socket, or when only one end has the lane on, calls work through the
// socket alone.
func TestLaneFallback(t *testing.T) {
	big := bytes.Repeat([]byte{7}, 1<<20)
	check := func(t *testing.T, cli *rpc.Conn) {
		t.Helper()
		for range 3 {
			var out []byte
			if err := cli.Call(t.Context(), laneRaw, big, &out); err != nil || !bytes.Equal(out, big) {
				t.Fatalf("echo: %d bytes, %v", len(out), err)
			}
		}
		if cli.LaneOn() {
			t.Error("the lane is on")
		}
	}
	t.Run("no memfd", func(t *testing.T) {
		lane.TestingDisable.Store(true)
		defer lane.TestingDisable.Store(false)
		cli, _ := lanePair(t, 0, 0)
		check(t, cli)
	})
	t.Run("pipe", func(t *testing.T) {
		a, b := transport.Pipe()
		srv := rpc.NewConn(b, rpc.Options{Role: rpc.RoleChild, Handlers: laneMux(), SharedMemory: true})
		cli := rpc.NewConn(a, rpc.Options{Role: rpc.RoleParent, SharedMemory: true})
		defer srv.Close()
		defer cli.Close()
		check(t, cli)
	})
	t.Run("child only", func(t *testing.T) {
		a, b := unixPair(t)
		srv := rpc.NewConn(b, rpc.Options{Role: rpc.RoleChild, Handlers: laneMux(), SharedMemory: true})
		cli := rpc.NewConn(a, rpc.Options{Role: rpc.RoleParent})
		defer srv.Close()
		defer cli.Close()
		check(t, cli)
	})
}

// rawParent plays a procxy parent by hand over a socketpair: it offers the
// lane to a child Conn and then writes whatever frames a test wants.
type rawParent struct {
	t      *testing.T
	conn   *net.UnixConn
	r      *wire.Reader
	tx, rx *lane.Region
	child  *rpc.Conn
}

func newRawParent(t *testing.T) *rawParent {
	t.Helper()
	if !lane.Supported {
		t.Skip("no shared-memory lane on", runtime.GOOS)
	}
	a, b := unixPair(t)
	p := &rawParent{t: t, conn: a.(*net.UnixConn), r: wire.NewReader(a, 0)}
	p.r.Allow(wire.FlagLane)
	var err error
	if p.tx, err = lane.Create(1 << 20); err != nil {
		t.Fatal(err)
	}
	if p.rx, err = lane.Create(1 << 20); err != nil {
		t.Fatal(err)
	}
	frame := wire.Header{Method: lane.OpOffer, Flags: wire.FlagLane | wire.FlagResponse, Len: lane.OfferSize}.Append(nil)
	frame = lane.Offer{Parent: 1 << 20, Child: 1 << 20}.Append(frame)
	if _, _, err := p.conn.WriteMsgUnix(frame, lane.Rights(p.tx.File(), p.rx.File()), nil); err != nil {
		t.Fatal(err)
	}
	p.child = rpc.NewConn(b, rpc.Options{Role: rpc.RoleChild, Handlers: laneMux(), SharedMemory: true})
	t.Cleanup(func() {
		p.child.Close()
		p.conn.Close()
		p.tx.Close()
		p.rx.Close()
	})
	f, err := p.r.ReadFrame()
	if err != nil || f.Method != lane.OpAccept || f.Flags&wire.FlagLane == 0 {
		t.Fatalf("the child answered the offer with %+v, %v; want an accept", f.Header, err)
	}
	return p
}

// writeRef writes a reference frame for method 1 (a request with id 1).
func (p *rawParent) writeRef(r lane.Ref) {
	p.t.Helper()
	w := wire.NewWriter(p.conn)
	if err := w.WriteFrame(wire.Header{Method: laneRaw.ID, Flags: wire.FlagLane, ID: 1}, r.Append(nil)); err != nil {
		p.t.Fatal(err)
	}
}

// wantFail checks that the child's connection ends with an error naming why.
func (p *rawParent) wantFail(why string) {
	p.t.Helper()
	<-p.child.Done()
	err := p.child.Err()
	if !errors.Is(err, rpc.ErrClosed) || !errors.Is(err, lane.ErrProtocol) || !strings.Contains(err.Error(), why) {
		p.t.Fatalf("the connection ended with %v; want a lane protocol violation (%s)", err, why)
	}
}

// TestLaneHostilePeer: a peer that sends a reference out of bounds, one
// replayed after it was released, or a release of something never sent,
// ends the connection with a clear error; nothing crashes or hangs.
func TestLaneHostilePeer(t *testing.T) {
	t.Run("out of bounds", func(t *testing.T) {
		p := newRawParent(t)
		p.writeRef(lane.Ref{Off: 1<<20 - 10, Len: 100, Seq: 1})
		p.wantFail("out of bounds")
	})
	t.Run("offset overflow", func(t *testing.T) {
		p := newRawParent(t)
		p.writeRef(lane.Ref{Off: 1<<64 - 8, Len: 100, Seq: 1})
		p.wantFail("out of bounds")
	})
	t.Run("replayed", func(t *testing.T) {
		p := newRawParent(t)
		copy(p.tx.Bytes(), "ping")
		p.writeRef(lane.Ref{Off: 0, Len: 4, Seq: 1})
		f, err := p.r.ReadFrame() // the child's release of reference 1
		if err != nil || f.Method != lane.OpRelease {
			t.Fatalf("got %+v, %v; want the release", f.Header, err)
		}
		p.writeRef(lane.Ref{Off: 0, Len: 4, Seq: 1}) // again, after it was released
		p.wantFail("out of sequence")
	})
	t.Run("release of nothing", func(t *testing.T) {
		p := newRawParent(t)
		w := wire.NewWriter(p.conn)
		w.WriteFrame(wire.Header{Method: lane.OpRelease, Flags: wire.FlagLane | wire.FlagResponse}, lane.AppendRelease(nil, 42))
		p.wantFail("not in flight")
	})
	t.Run("short reference", func(t *testing.T) {
		p := newRawParent(t)
		w := wire.NewWriter(p.conn)
		w.WriteFrame(wire.Header{Method: laneRaw.ID, Flags: wire.FlagLane, ID: 1}, []byte{1, 2, 3})
		p.wantFail("a reference is 16 bytes")
	})
}

// TestLaneBadOffer: a child refuses an offer it cannot use (unsealed
// regions, wrong sizes, no descriptors) and goes on without the lane.
func TestLaneBadOffer(t *testing.T) {
	if !lane.Supported {
		t.Skip("no shared-memory lane on", runtime.GOOS)
	}
	for _, tt := range []struct {
		name  string
		files func(t *testing.T) []*os.File
		size  uint64
	}{
		{"not sealed", func(t *testing.T) []*os.File {
			f1, _ := os.CreateTemp(t.TempDir(), "r")
			f2, _ := os.CreateTemp(t.TempDir(), "r")
			f1.Truncate(1 << 20)
			f2.Truncate(1 << 20)
			return []*os.File{f1, f2}
		}, 1 << 20},
		{"size differs", func(t *testing.T) []*os.File {
			r1, _ := lane.Create(1 << 20)
			r2, _ := lane.Create(1 << 20)
			t.Cleanup(func() { r1.Close(); r2.Close() })
			return []*os.File{r1.File(), r2.File()}
		}, 2 << 20},
		{"no descriptors", func(t *testing.T) []*os.File { return nil }, 1 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := unixPair(t)
			uc := a.(*net.UnixConn)
			frame := wire.Header{Method: lane.OpOffer, Flags: wire.FlagLane | wire.FlagResponse, Len: lane.OfferSize}.Append(nil)
			frame = lane.Offer{Parent: tt.size, Child: tt.size}.Append(frame)
			if _, _, err := uc.WriteMsgUnix(frame, lane.Rights(tt.files(t)...), nil); err != nil {
				t.Fatal(err)
			}
			child := rpc.NewConn(b, rpc.Options{Role: rpc.RoleChild, Handlers: laneMux(), SharedMemory: true,
				Logger: slog.New(slog.DiscardHandler)})
			defer child.Close()
			defer a.Close()
			r := wire.NewReader(a, 0)
			r.Allow(wire.FlagLane)
			f, err := r.ReadFrame()
			if err != nil || f.Method != lane.OpRefuse || f.Flags&wire.FlagLane == 0 {
				t.Fatalf("the child answered with %+v, %v; want a refusal", f.Header, err)
			}
			// The child goes on without the lane.
			if err := wire.NewWriter(a).WriteFrame(wire.Header{Method: laneRaw.ID, ID: 5}, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			f, err = r.ReadFrame()
			if err != nil || f.ID != 5 || string(f.Payload) != "hi" || f.Flags&wire.FlagLane != 0 {
				t.Fatalf("after the refusal: %+v %q, %v", f.Header, f.Payload, err)
			}
		})
	}
}

// TestBothWaysLarge: both ends call each other at once with payloads far
// larger than a socket's buffer, through the lane, through the socket when
// the lane is full, and with the lane off. Neither end may stop reading
// while it waits to write (each would wait for the other for ever).
func TestBothWaysLarge(t *testing.T) {
	for _, shm := range []bool{true, false} {
		t.Run(fmt.Sprintf("lane %v", shm), func(t *testing.T) {
			a, b := unixPair(t)
			opts := func(role rpc.Role) rpc.Options {
				return rpc.Options{Role: role, Handlers: laneMux(), SharedMemory: shm, SharedMemoryMin: 64 << 10, SharedMemorySize: 4 << 20}
			}
			p := rpc.NewConn(a, opts(rpc.RoleParent))
			c := rpc.NewConn(b, opts(rpc.RoleChild))
			defer p.Close()
			defer c.Close()
			var wg sync.WaitGroup
			for i := range 8 {
				conn := p
				if i%2 == 1 {
					conn = c
				}
				wg.Go(func() {
					for j := range 6 {
						in := bytes.Repeat([]byte{byte(i*8 + j)}, (1+j%3)<<20)
						var out []byte
						m := []rpc.Method{laneRaw, laneBytes, laneMsgpack}[j%3]
						if err := conn.Call(t.Context(), m, in, &out); err != nil || !bytes.Equal(out, in) {
							t.Errorf("caller %d call %d: %d bytes, %v", i, j, len(out), err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
