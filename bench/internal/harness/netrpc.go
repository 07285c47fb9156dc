package harness

import (
	"context"
	"net"
	"net/rpc"
)

// net/rpc: the standard library's RPC with its default gob codec. The child
// registers EchoService as "Echo" and serves every accepted connection;
// the parent makes synchronous client.Call("Echo.Echo", in, &out) calls,
// which net/rpc multiplexes over one connection by sequence number.

const netRPCRole = "netrpc"

func init() { servers[netRPCRole] = serveNetRPC }

// EchoService is the net/rpc receiver of both the net/rpc contender and
// the go-plugin net/rpc plugin.
type EchoService struct{}

// Echo replies with its argument.
func (EchoService) Echo(in []byte, out *[]byte) error {
	*out = in
	return nil
}

func serveNetRPC(l net.Listener) error {
	srv := rpc.NewServer()
	if err := srv.RegisterName("Echo", EchoService{}); err != nil {
		return err
	}
	srv.Accept(l)
	return nil
}

type netRPCClient struct {
	child *Child
	cli   *rpc.Client
}

func startNetRPC(tr Transport) (Client, error) {
	child, c, err := spawnDial(netRPCRole, tr)
	if err != nil {
		return nil, err
	}
	return &netRPCClient{child: child, cli: rpc.NewClient(c)}, nil
}

// Echo ignores ctx: net/rpc calls cannot be cancelled.
func (c *netRPCClient) Echo(_ context.Context, in, out []byte) ([]byte, error) {
	err := c.cli.Call("Echo.Echo", in, &out)
	return out, err
}

func (c *netRPCClient) Close() error {
	c.cli.Close()
	return c.child.Close()
}

// PID is the child's process id.
func (c *netRPCClient) PID() int { return c.child.PID() }
