package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/rpc"
	"os"
	"os/exec"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// go-plugin: HashiCorp's plugin system, as its users run it. The host
// starts the plugin with plugin.NewClient (exec.Command(os.Args[0]) plus
// EnvRole), go-plugin does its handshake over the child's stdout and
// connects to the Unix socket the plugin opened (in a temp dir of its own),
// and the host calls Echo on the dispensed interface.
//   - net/rpc flavour: net/rpc (gob) over a yamux stream on that socket;
//     the server object is EchoService, registered by go-plugin as "Plugin".
//   - gRPC flavour: grpc-go with the same hand-written service and raw codec
//     as the grpc contender; go-plugin adds its health, broker, controller
//     and stdio services to the server.

const (
	pluginNetRPC = "plugin-netrpc"
	pluginGRPC   = "plugin-grpc"
	pluginName   = "echo"
)

var pluginHandshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "PROCXYBENCH_PLUGIN",
	MagicCookieValue: "echo",
}

func init() {
	pluginServers[pluginNetRPC] = func() { servePlugin(pluginName, netRPCPlugin{}) }
	pluginServers[pluginGRPC] = func() { servePlugin(pluginName, grpcPlugin{}) }
}

func servePlugin(name string, p plugin.Plugin) {
	// go-plugin's net/rpc server logs a "[DEBUG] … use of closed network
	// connection" line through package log when the host kills it.
	log.SetOutput(io.Discard)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: pluginHandshake,
		Plugins:         plugin.PluginSet{name: p},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpcServerOptions()...)...)
		},
		Logger: hclog.NewNullLogger(),
	})
}

// pluginEchoer is what the host dispenses.
type pluginEchoer interface {
	Echo(ctx context.Context, in, out []byte) ([]byte, error)
}

type netRPCPlugin struct{}

func (netRPCPlugin) Server(*plugin.MuxBroker) (any, error) { return EchoService{}, nil }

func (netRPCPlugin) Client(_ *plugin.MuxBroker, c *rpc.Client) (any, error) {
	return netRPCPluginClient{c}, nil
}

type netRPCPluginClient struct{ c *rpc.Client }

func (p netRPCPluginClient) Echo(_ context.Context, in, out []byte) ([]byte, error) {
	err := p.c.Call("Plugin.Echo", in, &out)
	return out, err
}

type grpcPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	s.RegisterService(&grpcEchoDesc, struct{}{})
	return nil
}

func (grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return grpcPluginClient{cc}, nil
}

type grpcPluginClient struct{ cc *grpc.ClientConn }

func (p grpcPluginClient) Echo(ctx context.Context, in, out []byte) ([]byte, error) {
	return grpcEcho(ctx, p.cc, in, out)
}

type pluginClient struct {
	client *plugin.Client
	echo   pluginEchoer
	dir    string // holds go-plugin's socket dir, so a killed plugin leaves no socket behind
}

func startPlugin(role string) (_ Client, err error) {
	proto, p := plugin.ProtocolNetRPC, plugin.Plugin(netRPCPlugin{})
	if role == pluginGRPC {
		proto, p = plugin.ProtocolGRPC, grpcPlugin{}
	}
	client, raw, dir, err := launchPlugin(role, proto, pluginName, p)
	if err != nil {
		return nil, err
	}
	echo, ok := raw.(pluginEchoer)
	if !ok {
		client.Kill()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("go-plugin: dispensed %T", raw)
	}
	return &pluginClient{client: client, echo: echo, dir: dir}, nil
}

// launchPlugin starts this executable as the plugin for role, speaking
// proto, and dispenses name (served by p). The caller kills the client and
// removes dir, which holds go-plugin's socket.
func launchPlugin(role string, proto plugin.Protocol, name string, p plugin.Plugin) (_ *plugin.Client, _ any, _ string, err error) {
	dir, err := os.MkdirTemp("", "pxb")
	if err != nil {
		return nil, nil, "", err
	}
	var client *plugin.Client
	defer func() {
		if err != nil {
			if client != nil {
				client.Kill()
			}
			os.RemoveAll(dir)
		}
	}()
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{EnvRole + "=" + role} // go-plugin appends os.Environ()
	client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginHandshake,
		Plugins:          plugin.PluginSet{name: p},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{proto},
		GRPCDialOptions:  []grpc.DialOption{grpcCallOptions()},
		Logger:           hclog.NewNullLogger(),
		Stderr:           os.Stderr,
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: dir},
	})
	rpcClient, err := client.Client()
	if err != nil {
		return nil, nil, "", err
	}
	raw, err := rpcClient.Dispense(name)
	if err != nil {
		return nil, nil, "", err
	}
	return client, raw, dir, nil
}

func (c *pluginClient) Echo(ctx context.Context, in, out []byte) ([]byte, error) {
	return c.echo.Echo(ctx, in, out)
}

func (c *pluginClient) Close() error {
	c.client.Kill()
	os.RemoveAll(c.dir)
	if !c.client.Exited() {
		return errors.New("go-plugin: plugin still running after Kill")
	}
	return nil
}

// PID is the plugin's process id.
func (c *pluginClient) PID() int { return c.client.ReattachConfig().Pid }
