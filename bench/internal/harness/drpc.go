package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"storj.io/drpc"
	"storj.io/drpc/drpcconn"
	"storj.io/drpc/drpcmanager"
	"storj.io/drpc/drpcmux"
	"storj.io/drpc/drpcserver"
	"storj.io/drpc/drpcwire"
)

// drpc: Storj's protobuf-compatible RPC, with a pass-through encoding for
// *[]byte (no protoc). A drpc connection carries one call at a time, so
// the client keeps a free list of connections and dials another one (the
// child accepts any number) when every connection is busy: 64 calls in
// flight use up to 64 sockets. Over a socketpair there is only one, so
// drpc runs over the Unix socket only.

const (
	drpcRole = "drpc"
	drpcRPC  = "/procxybench.Echo/Echo"
)

// drpcManager raises drpc's 4 MiB message limit for the 10 and 64 MiB
// echoes; everything else is default.
var drpcManager = drpcmanager.Options{Reader: drpcwire.ReaderOptions{MaximumBufferSize: 80 << 20}}

func init() { servers[drpcRole] = serveDRPC }

// drpcRaw marshals a *[]byte as its bytes and unmarshals into one, copying
// (drpc reuses its buffer).
type drpcRaw struct{}

func (drpcRaw) Marshal(msg drpc.Message) ([]byte, error) {
	p, ok := msg.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("drpc raw: cannot marshal %T", msg)
	}
	return *p, nil
}

func (drpcRaw) Unmarshal(buf []byte, msg drpc.Message) error {
	p, ok := msg.(*[]byte)
	if !ok {
		return fmt.Errorf("drpc raw: cannot unmarshal into %T", msg)
	}
	*p = append(grow(*p, len(buf))[:0], buf...)
	return nil
}

// drpcEchoServer is the service; drpcEchoDesc describes it as drpc's code
// generator would.
type drpcEchoServer struct{}

func (drpcEchoServer) Echo(_ context.Context, in *[]byte) (*[]byte, error) { return in, nil }

type drpcEchoDesc struct{}

func (drpcEchoDesc) NumMethods() int { return 1 }

func (drpcEchoDesc) Method(n int) (string, drpc.Encoding, drpc.Receiver, any, bool) {
	if n != 0 {
		return "", nil, nil, nil, false
	}
	return drpcRPC, drpcRaw{},
		func(srv any, ctx context.Context, in1, _ any) (drpc.Message, error) {
			return srv.(drpcEchoServer).Echo(ctx, in1.(*[]byte))
		}, drpcEchoServer.Echo, true
}

func serveDRPC(l net.Listener) error {
	mux := drpcmux.New()
	if err := mux.Register(drpcEchoServer{}, drpcEchoDesc{}); err != nil {
		return err
	}
	return drpcserver.NewWithOptions(mux, drpcserver.Options{Manager: drpcManager}).Serve(context.Background(), l)
}

type drpcClient struct {
	child *Child
	mu    sync.Mutex
	free  []*drpcconn.Conn // idle connections; guarded by mu
	all   []*drpcconn.Conn // every connection, for Close; guarded by mu
}

func startDRPC(tr Transport) (Client, error) {
	if tr != Unix {
		return nil, errors.New("drpc needs a connection per call in flight: Unix socket only")
	}
	child, c, err := spawnDial(drpcRole, tr)
	if err != nil {
		return nil, err
	}
	conn := drpcconn.NewWithOptions(c, drpcconn.Options{Manager: drpcManager})
	return &drpcClient{child: child, free: []*drpcconn.Conn{conn}, all: []*drpcconn.Conn{conn}}, nil
}

// conn takes an idle connection or dials a new one.
func (c *drpcClient) conn() (*drpcconn.Conn, error) {
	c.mu.Lock()
	if n := len(c.free); n > 0 {
		conn := c.free[n-1]
		c.free = c.free[:n-1]
		c.mu.Unlock()
		return conn, nil
	}
	c.mu.Unlock()
	nc, err := c.child.Dial()
	if err != nil {
		return nil, err
	}
	conn := drpcconn.NewWithOptions(nc, drpcconn.Options{Manager: drpcManager})
	c.mu.Lock()
	c.all = append(c.all, conn)
	c.mu.Unlock()
	return conn, nil
}

func (c *drpcClient) Echo(ctx context.Context, in, out []byte) ([]byte, error) {
	conn, err := c.conn()
	if err != nil {
		return out, err
	}
	err = conn.Invoke(ctx, drpcRPC, drpcRaw{}, &in, &out)
	c.mu.Lock()
	c.free = append(c.free, conn)
	c.mu.Unlock()
	return out, err
}

func (c *drpcClient) Close() error {
	c.mu.Lock()
	for _, conn := range c.all {
		conn.Close()
	}
	c.mu.Unlock()
	return c.child.Close()
}

// PID is the child's process id.
func (c *drpcClient) PID() int { return c.child.PID() }
