package harness

import (
	"context"
	"net"

	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
)

// procxy: an rpc.Conn in each process. The child serves method 1 (raw
// codec echo: the request payload is the response payload, served in place
// from an rpc.Payload) and method 2
// (msgpack [2]int → int, the "add" call); the parent calls them.

const (
	procxyRole    = "procxy"
	procxyShmRole = "procxy-shm" // the same, with the shared-memory lane on
)

var (
	procxyEcho = rpc.Method{ID: 1, Request: codec.Raw, Response: codec.Raw}
	procxyAdd  = rpc.Method{ID: 2}
)

func init() {
	servers[procxyRole] = func(l net.Listener) error { return serveProcxy(l, false) }
	servers[procxyShmRole] = func(l net.Listener) error { return serveProcxy(l, true) }
}

func procxyMux() *rpc.Mux {
	mux := new(rpc.Mux)
	// A raw echo that serves the request's bytes in place (rpc.Payload): a
	// large request is read into a buffer the connection reuses once the
	// reply is written, so the echo allocates nothing.
	mux.Handle(procxyEcho.ID, rpc.ResultFunc(func(_ context.Context, p rpc.Payload) ([]byte, error) {
		return p.Bytes, nil
	}).WithCodec(codec.Raw))
	mux.Handle(procxyAdd.ID, rpc.ResultFunc(func(_ context.Context, a [2]int) (int, error) {
		return a[0] + a[1], nil
	}))
	return mux
}

func serveProcxy(l net.Listener, shm bool) error {
	mux := procxyMux()
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		// The Conn's own goroutines serve it until the parent hangs up.
		rpc.NewConn(c, rpc.Options{Role: rpc.RoleChild, Handlers: mux, SharedMemory: shm})
	}
}

type procxyClient struct {
	child *Child
	conn  *rpc.Conn
}

func startProcxy(tr Transport) (Client, error) { return startProcxyLane(tr, false) }

// startProcxyLane starts the procxy contender, with the shared-memory lane
// on at both ends when shm is set (payloads of 256 KiB or more travel
// through memory both processes map; see rpc.Options.SharedMemory).
func startProcxyLane(tr Transport, shm bool) (Client, error) {
	role := procxyRole
	if shm {
		role = procxyShmRole
	}
	child, c, err := spawnDial(role, tr)
	if err != nil {
		return nil, err
	}
	return &procxyClient{child: child, conn: rpc.NewConn(c, rpc.Options{Role: rpc.RoleParent, SharedMemory: shm})}, nil
}

func (c *procxyClient) Echo(ctx context.Context, in, out []byte) ([]byte, error) {
	err := c.conn.Call(ctx, procxyEcho, in, &out)
	return out, err
}

func (c *procxyClient) Add(ctx context.Context, a, b int) (int, error) {
	var sum int
	err := c.conn.Call(ctx, procxyAdd, [2]int{a, b}, &sum)
	return sum, err
}

func (c *procxyClient) Close() error {
	c.conn.Close()
	return c.child.Close()
}
