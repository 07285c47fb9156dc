package harness

import (
	"context"
	"net"
)

// Client is the parent's end of one contender: a connection to a child
// process that echoes what it is sent. Echo is safe for concurrent use.
type Client interface {
	// Echo sends in and returns the bytes the child sent back. The result
	// reuses out's storage when the contender's API allows it.
	Echo(ctx context.Context, in, out []byte) ([]byte, error)
	// Close ends the connection and the child process.
	Close() error
}

// Adder is implemented by contenders that also serve the procxy "add"
// method: two ints in, one int out (msgpack).
type Adder interface {
	Add(ctx context.Context, a, b int) (int, error)
}

// Contender is one RPC stack over one transport.
type Contender struct {
	Name      string // "floor", "procxy", "procxy object", "net/rpc", "ttrpc", "drpc", "grpc", "go-plugin/netrpc", …
	Transport string // "unix" or "socketpair" (go-plugin opens its own Unix socket)
	// Start spawns the child and connects to it.
	Start func() (Client, error)
}

// Label is "name/transport".
func (c Contender) Label() string { return c.Name + "/" + c.Transport }

// Contenders lists every contender, the floor first.
func Contenders() []Contender {
	return []Contender{
		{"floor", string(Unix), func() (Client, error) { return startFloor(Unix) }},
		{"procxy", string(Unix), func() (Client, error) { return startProcxy(Unix) }},
		{"procxy", string(Socketpair), func() (Client, error) { return startProcxy(Socketpair) }},
		{"procxy shm", string(Socketpair), func() (Client, error) { return startProcxyLane(Socketpair, true) }},
		{"procxy object", string(Socketpair), func() (Client, error) { return startObjectEcho() }},
		{"procxy host→worker", string(Unix), startHostWorker},
		{"net/rpc", string(Unix), func() (Client, error) { return startNetRPC(Unix) }},
		{"ttrpc", string(Unix), func() (Client, error) { return startTTRPC(Unix) }},
		{"drpc", string(Unix), func() (Client, error) { return startDRPC(Unix) }},
		{"grpc", string(Unix), func() (Client, error) { return startGRPC(Unix) }},
		{"go-plugin/netrpc", string(Unix), func() (Client, error) { return startPlugin(pluginNetRPC) }},
		{"go-plugin/grpc", string(Unix), func() (Client, error) { return startPlugin(pluginGRPC) }},
	}
}

// spawnDial starts the child for role over tr and dials it once.
func spawnDial(role string, tr Transport) (*Child, net.Conn, error) {
	child, err := Spawn(role, tr)
	if err != nil {
		return nil, nil, err
	}
	conn, err := child.Dial()
	if err != nil {
		child.Close()
		return nil, nil, err
	}
	return child, conn, nil
}

// grow returns out resized to n bytes, reallocating only when it is too small.
func grow(out []byte, n int) []byte {
	if cap(out) < n {
		return make([]byte, n)
	}
	return out[:n]
}
