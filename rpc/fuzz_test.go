package rpc_test

import (
	"context"
	"encoding/hex"
	"testing"

	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/wire"
	"github.com/procxy/procxy/transport"
)

// FuzzConn feeds arbitrary bytes to a serving Conn, as a hostile peer would:
// whatever arrives, the Conn must not panic, must answer or close, and must
// shut down cleanly with no goroutine left (TestMain's goleak checks that).
func FuzzConn(f *testing.F) {
	seeds := []string{
		"000100000000010000000e83a16101a162a178a16393010203", // F01 echo
		"0002000000000200000004" + "81a16e02",                // stream request
		"ffff000000000400000000",                             // abort
		"fffe00000000000000000130",                           // stray auth
		"0063000000000500000001c0",                           // unknown method
		"000a000000000100000001c1",                           // undecodable payload
		"000100000000010000000e83a16101",                     // truncated
		"0001400000000100000000",                             // reserved bits
	}
	for _, s := range seeds {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	mux := newService().mux()
	// The crash method exits the process; the fuzzer must not reach it.
	mux.Handle(mCrash, rpc.SendFunc(func(context.Context, any) error { return nil }))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := transport.Pipe()
		srv := rpc.NewConn(b, rpc.Options{Role: rpc.RoleChild, Handlers: mux, MaxPayload: 1 << 16})
		done := make(chan struct{})
		go func() { // drain replies so the server never blocks on a full pipe
			defer close(done)
			r := wire.NewReader(a, 0)
			for {
				fr, err := r.ReadFrame()
				if err != nil {
					return
				}
				if err := fr.Validate(wire.DefaultMaxPayload); err != nil {
					t.Errorf("server sent an invalid frame: %v", err)
				}
			}
		}()
		a.Write(data)
		srv.Close() // must return: handlers see their context cancelled
		a.Close()
		<-done
	})
}
