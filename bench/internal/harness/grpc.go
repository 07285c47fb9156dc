package harness

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// gRPC: grpc-go over HTTP/2 with a hand-written service (no protoc) and a
// pass-through codec, so messages are the payload bytes themselves. The
// codec is registered by name and picked per call with
// CallContentSubtype, which leaves protobuf to every other call on the
// connection (go-plugin's own services need it).

const (
	grpcRole       = "grpc"
	grpcCodecName  = "procxybench-raw"
	grpcEchoMethod = "/procxybench.Echo/Echo"
	grpcMaxMsg     = 80 << 20 // the 4 MiB default would refuse the 10 and 64 MiB echoes
)

func init() {
	encoding.RegisterCodecV2(rawGRPCCodec{})
	servers[grpcRole] = serveGRPC
}

// rawGRPCCodec marshals a *[]byte as its bytes and unmarshals into a
// *[]byte, reusing its storage.
type rawGRPCCodec struct{}

func (rawGRPCCodec) Name() string { return grpcCodecName }

func (rawGRPCCodec) Marshal(v any) (mem.BufferSlice, error) {
	p, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("%s: cannot marshal %T", grpcCodecName, v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*p)}, nil
}

func (rawGRPCCodec) Unmarshal(data mem.BufferSlice, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("%s: cannot unmarshal into %T", grpcCodecName, v)
	}
	*p = grow(*p, data.Len())
	data.CopyTo(*p)
	return nil
}

// grpcEchoDesc is what protoc-gen-go-grpc would generate for
// `service Echo { rpc Echo(bytes) returns (bytes); }`.
var grpcEchoDesc = grpc.ServiceDesc{
	ServiceName: "procxybench.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new([]byte)
			if err := dec(in); err != nil {
				return nil, err
			}
			return in, nil
		},
	}},
}

func grpcServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(grpcMaxMsg), grpc.MaxSendMsgSize(grpcMaxMsg)}
}

// grpcEchoCallOptions select the raw codec for the echo call only: under
// go-plugin the same connection carries go-plugin's protobuf calls.
var grpcEchoCallOptions = []grpc.CallOption{grpc.CallContentSubtype(grpcCodecName)}

func grpcCallOptions() grpc.DialOption {
	return grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(grpcMaxMsg),
		grpc.MaxCallSendMsgSize(grpcMaxMsg),
	)
}

func serveGRPC(l net.Listener) error {
	srv := grpc.NewServer(grpcServerOptions()...)
	srv.RegisterService(&grpcEchoDesc, struct{}{})
	return srv.Serve(l)
}

type grpcClient struct {
	child *Child
	cc    *grpc.ClientConn
}

func startGRPC(tr Transport) (Client, error) {
	child, err := Spawn(grpcRole, tr)
	if err != nil {
		return nil, err
	}
	cc, err := grpc.NewClient("passthrough:///procxybench",
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return child.Dial() }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpcCallOptions(),
	)
	if err != nil {
		child.Close()
		return nil, err
	}
	return &grpcClient{child: child, cc: cc}, nil
}

func (c *grpcClient) Echo(ctx context.Context, in, out []byte) ([]byte, error) {
	return grpcEcho(ctx, c.cc, in, out)
}

func grpcEcho(ctx context.Context, cc grpc.ClientConnInterface, in, out []byte) ([]byte, error) {
	err := cc.Invoke(ctx, grpcEchoMethod, &in, &out, grpcEchoCallOptions...)
	return out, err
}

func (c *grpcClient) Close() error {
	c.cc.Close()
	return c.child.Close()
}

// PID is the child's process id.
func (c *grpcClient) PID() int { return c.child.PID() }
