package harness

import (
	"context"
	"net"

	"github.com/containerd/ttrpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ttrpc: containerd's lightweight RPC over one connection, with protobuf
// messages (a google.protobuf.BytesValue each way: ttrpc's codec takes
// only proto messages). ttrpc refuses messages over 4 MiB, a constant, so
// the client sends a larger payload as several calls of at most
// ttrpcChunk bytes, as a ttrpc user would have to.

const (
	ttrpcRole    = "ttrpc"
	ttrpcService = "procxybench.Echo"
	ttrpcChunk   = 4<<20 - 64 // room for the message framing
)

func init() { servers[ttrpcRole] = serveTTRPC }

func serveTTRPC(l net.Listener) error {
	srv, err := ttrpc.NewServer()
	if err != nil {
		return err
	}
	srv.Register(ttrpcService, map[string]ttrpc.Method{
		"Echo": func(_ context.Context, unmarshal func(any) error) (any, error) {
			var in wrapperspb.BytesValue
			if err := unmarshal(&in); err != nil {
				return nil, err
			}
			return &in, nil
		},
	})
	return srv.Serve(context.Background(), l)
}

type ttrpcClient struct {
	child *Child
	cli   *ttrpc.Client
}

func startTTRPC(tr Transport) (Client, error) {
	child, c, err := spawnDial(ttrpcRole, tr)
	if err != nil {
		return nil, err
	}
	return &ttrpcClient{child: child, cli: ttrpc.NewClient(c)}, nil
}

func (c *ttrpcClient) Echo(ctx context.Context, in, out []byte) ([]byte, error) {
	out = out[:0]
	for first := true; first || len(in) > 0; first = false {
		n := min(len(in), ttrpcChunk)
		req, resp := wrapperspb.BytesValue{Value: in[:n]}, wrapperspb.BytesValue{}
		if err := c.cli.Call(ctx, ttrpcService, "Echo", &req, &resp); err != nil {
			return out, err
		}
		out = append(out, resp.Value...)
		in = in[n:]
	}
	return out, nil
}

func (c *ttrpcClient) Close() error {
	c.cli.Close()
	return c.child.Close()
}

// PID is the child's process id.
func (c *ttrpcClient) PID() int { return c.child.PID() }
