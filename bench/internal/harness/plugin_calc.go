package harness

import (
	"context"
	"fmt"
	"net/rpc"
	"os"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// go-plugin making the call section's Add(a, b int) int, launched like the
// echo plugins of plugin.go (separate roles, so child profiles are named
// apart):
//   - net/rpc flavour: CalcService.Add(AddArgs, *int), the usual shape of a
//     go-plugin net/rpc plugin, gob over a yamux stream.
//   - gRPC flavour: `service Calc { rpc Add(AddRequest) returns (AddReply); }`
//     with `message AddRequest { int64 a = 1; int64 b = 2; }` and
//     `message AddReply { int64 sum = 1; }`. There is no protoc here: a
//     hand-written codec encodes exactly the protobuf wire format of those
//     messages with protowire, which is cheaper than proto.Marshal's generic
//     path, so this row is a slight lower bound for a protoc-generated plugin.

const (
	pluginNetRPCCalc = "plugin-netrpc-calc"
	pluginGRPCCalc   = "plugin-grpc-calc"
	pluginCalcName   = "calc"
	grpcAddCodecName = "procxybench-add"
	grpcAddMethod    = "/procxybench.Calc/Add"
)

func init() {
	encoding.RegisterCodecV2(addGRPCCodec{})
	pluginServers[pluginNetRPCCalc] = func() { servePlugin(pluginCalcName, netRPCCalcPlugin{}) }
	pluginServers[pluginGRPCCalc] = func() { servePlugin(pluginCalcName, grpcCalcPlugin{}) }
}

// AddArgs are the arguments of CalcService.Add.
type AddArgs struct{ A, B int }

// CalcService is the net/rpc receiver of the go-plugin calc plugin.
type CalcService struct{}

// Add sets *sum to a + b.
func (CalcService) Add(args AddArgs, sum *int) error {
	*sum = args.A + args.B
	return nil
}

type netRPCCalcPlugin struct{}

func (netRPCCalcPlugin) Server(*plugin.MuxBroker) (any, error) { return CalcService{}, nil }

func (netRPCCalcPlugin) Client(_ *plugin.MuxBroker, c *rpc.Client) (any, error) {
	return netRPCCalcClient{c}, nil
}

type netRPCCalcClient struct{ c *rpc.Client }

func (p netRPCCalcClient) Add(_ context.Context, a, b int) (int, error) {
	var sum int
	err := p.c.Call("Plugin.Add", AddArgs{a, b}, &sum)
	return sum, err
}

type addRequest struct{ A, B int64 }
type addReply struct{ Sum int64 }

var grpcCalcDesc = grpc.ServiceDesc{
	ServiceName: "procxybench.Calc",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Add",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(addRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			return &addReply{Sum: in.A + in.B}, nil
		},
	}},
}

type grpcCalcPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (grpcCalcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	s.RegisterService(&grpcCalcDesc, struct{}{})
	return nil
}

func (grpcCalcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return grpcCalcClient{cc}, nil
}

type grpcCalcClient struct{ cc *grpc.ClientConn }

var grpcAddCallOptions = []grpc.CallOption{grpc.CallContentSubtype(grpcAddCodecName)}

func (p grpcCalcClient) Add(ctx context.Context, a, b int) (int, error) {
	var out addReply
	err := p.cc.Invoke(ctx, grpcAddMethod, &addRequest{int64(a), int64(b)}, &out, grpcAddCallOptions...)
	return int(out.Sum), err
}

// addGRPCCodec encodes *addRequest and *addReply in the protobuf wire
// format (varint fields 1 and 2; zero fields omitted, as proto3 does).
type addGRPCCodec struct{}

func (addGRPCCodec) Name() string { return grpcAddCodecName }

func (addGRPCCodec) Marshal(v any) (mem.BufferSlice, error) {
	var fields []int64
	switch m := v.(type) {
	case *addRequest:
		fields = []int64{m.A, m.B}
	case *addReply:
		fields = []int64{m.Sum}
	default:
		return nil, fmt.Errorf("%s: cannot marshal %T", grpcAddCodecName, v)
	}
	var b []byte
	for i, f := range fields {
		if f != 0 {
			b = protowire.AppendTag(b, protowire.Number(i+1), protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(f))
		}
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (addGRPCCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var fields []*int64
	switch m := v.(type) {
	case *addRequest:
		fields = []*int64{&m.A, &m.B}
	case *addReply:
		fields = []*int64{&m.Sum}
	default:
		return fmt.Errorf("%s: cannot unmarshal into %T", grpcAddCodecName, v)
	}
	var buf [64]byte
	n := data.Len()
	if n > len(buf) {
		return fmt.Errorf("%s: %d-byte message", grpcAddCodecName, n)
	}
	data.CopyTo(buf[:])
	b := buf[:n]
	for len(b) > 0 {
		num, typ, k := protowire.ConsumeTag(b)
		if k < 0 || typ != protowire.VarintType || num < 1 || int(num) > len(fields) {
			return fmt.Errorf("%s: bad field in %T", grpcAddCodecName, v)
		}
		b = b[k:]
		x, k := protowire.ConsumeVarint(b)
		if k < 0 {
			return protowire.ParseError(k)
		}
		b = b[k:]
		*fields[num-1] = int64(x)
	}
	return nil
}

type pluginCalcClient struct {
	client *plugin.Client
	adder  Adder
	dir    string
}

func startPluginCalc(role string) (CallClient, error) {
	proto, p := plugin.ProtocolNetRPC, plugin.Plugin(netRPCCalcPlugin{})
	if role == pluginGRPCCalc {
		proto, p = plugin.ProtocolGRPC, grpcCalcPlugin{}
	}
	client, raw, dir, err := launchPlugin(role, proto, pluginCalcName, p)
	if err != nil {
		return nil, err
	}
	adder, ok := raw.(Adder)
	if !ok {
		client.Kill()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("go-plugin: dispensed %T", raw)
	}
	return &pluginCalcClient{client: client, adder: adder, dir: dir}, nil
}

func (c *pluginCalcClient) Add(ctx context.Context, a, b int) (int, error) {
	return c.adder.Add(ctx, a, b)
}

func (c *pluginCalcClient) PID() int { return c.client.ReattachConfig().Pid }

func (c *pluginCalcClient) Close() error {
	return (&pluginClient{client: c.client, dir: c.dir}).Close()
}
