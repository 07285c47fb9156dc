package procxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"sync"

	"github.com/procxy/procxy/observe"
	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/transport"
)

// Environment of a child started by New. envChild marks the process as a
// procxy child; the connection to the parent is inherited as file descriptor 3.
const (
	envChild = "PROCXY_CHILD"
	childFD  = 3
)

// msgpackCodec encodes what travels between procxy peers, which are Go: times
// travel exactly (codec.MsgpackGo).
var msgpackCodec = codec.MsgpackGo

// Main must be the first statement of main (and of TestMain). In a parent
// it returns at once. In a child started by New it serves the parent and
// never returns: the process exits when the parent closes the proxy or dies.
//
// With PROCXY_LISTEN=path set (and started by hand, not by New), Main
// serves parents that Attach at path instead, and never returns (see
// ServeAt).
//
// Options apply to the child's side: Observe(ob) reports the calls it
// serves, with the trace context of the parent's calls.
func Main(opts ...Option) {
	if os.Getenv(envChild) == "" {
		if path := os.Getenv(EnvListen); path != "" {
			os.Exit(listenMain(path, opts))
		}
		return
	}
	os.Exit(serveChild(newOptions("", opts)))
}

// newRequest is the payload of the idNew call.
type newRequest struct {
	Key        string `msgpack:"key"`
	Config     []byte `msgpack:"config"` // msgpack of the constructor's config, or empty
	Serialized bool   `msgpack:"serialized"`
}

// schema answers idNew: the methods the parent may call.
type schema struct {
	PID     int       `msgpack:"pid"`
	Methods []*method `msgpack:"methods"`
}

func serveChild(o options) int {
	os.Unsetenv(envChild) // processes this child starts are not procxy children
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("procxy", "child")
	f := os.NewFile(childFD, "procxy-parent")
	nc, err := transport.FileConn(f)
	f.Close()
	if err != nil {
		log.Error("no connection to the parent on fd 3", "err", err)
		return 2
	}
	<-serveParent(nc, log, o.observer).Done() // the parent closed the proxy, or died
	return 0
}

// serveParent serves one parent on nc: its $new call, then the object's
// methods.
func serveParent(nc io.ReadWriteCloser, log *slog.Logger, ob observe.Observer) *rpc.Conn {
	var so *serviceObserver
	if ob != nil {
		so = &serviceObserver{Observer: ob}
		ob = so
	}
	mux := new(rpc.Mux)
	var once sync.Once
	mux.Handle(idNew, rpc.ResultFunc(func(ctx context.Context, req newRequest) (schema, error) {
		var s schema
		err := errors.New("procxy: object already constructed")
		once.Do(func() {
			if so != nil {
				so.key.Store(&req.Key)
			}
			s, err = construct(ctx, rpc.ConnOf(ctx), mux, req)
		})
		return s, err
	}).Named("$new"))
	// The lane is on whenever the parent offers it (procxy.SharedMemory).
	return rpc.NewConn(nc, rpc.Options{Role: rpc.RoleChild, Handlers: mux, Logger: log, SharedMemory: true, Codec: msgpackCodec,
		Observer: ob, Metadata: true})
}

// construct builds the object and registers its methods on mux.
func construct(ctx context.Context, conn *rpc.Conn, mux *rpc.Mux, req newRequest) (schema, error) {
	c := lookup(req.Key)
	if c == nil {
		return schema{}, &RemoteError{Code: CodeNotRegistered, Name: "NotRegistered",
			Message: fmt.Sprintf("%s is not registered in this executable (%s); call procxy.Register in an init function", req.Key, os.Args[0])}
	}
	c.resolveInterfaces()
	obj, err := c.construct(ctx, req.Config)
	if err != nil {
		return schema{}, err
	}
	if e, ok := obj.(interface{ procxyEmitter() *Emitter }); ok {
		e.procxyEmitter().attach(connSender(conn))
	}
	recv := reflect.ValueOf(obj)
	var serial *sync.Mutex
	if req.Serialized {
		serial = new(sync.Mutex)
	}
	for _, m := range c.methods {
		if m.Problem != "" {
			continue
		}
		mux.Handle(m.ID, handlerFor(m, recv, serial).Named(m.Name))
	}
	return schema{PID: os.Getpid(), Methods: c.methods}, nil
}

// handlerFor serves one method by reflection.
func handlerFor(m *method, recv reflect.Value, serial *sync.Mutex) rpc.Handler {
	if !m.Stream {
		return rpc.ResultFunc(func(ctx context.Context, p rpc.Payload) (any, error) {
			return m.serve(ctx, recv, serial, p)
		})
	}
	return rpc.StreamFunc(func(ctx context.Context, p rpc.Payload, send func(any) error) error {
		return m.serveStream(ctx, recv, serial, p, send)
	})
}

// serve decodes the arguments in p, calls the method on recv (one call at
// a time when serial is not nil) and returns its result.
func (m *method) serve(ctx context.Context, recv reflect.Value, serial *sync.Mutex, p rpc.Payload) (any, error) {
	call, err := m.decodeCall(ctx, recv, p)
	if err != nil {
		return nil, err
	}
	if serial != nil {
		serial.Lock()
		defer serial.Unlock()
	}
	v, err := m.invoke(call)
	if err != nil {
		return nil, crossed(m.pc, err)
	}
	if !v.IsValid() {
		return nil, nil
	}
	return v.Interface(), nil
}

// serveStream is serve for a method that returns a stream: its items go
// to send.
func (m *method) serveStream(ctx context.Context, recv reflect.Value, serial *sync.Mutex, p rpc.Payload, send func(any) error) error {
	call, err := m.decodeCall(ctx, recv, p)
	if err != nil {
		return err
	}
	if serial != nil {
		serial.Lock()
		defer serial.Unlock()
	}
	v, err := m.invoke(call)
	if err != nil {
		return crossed(m.pc, err)
	}
	if err := m.each(ctx, v, send); err != nil {
		if errors.Is(err, errStopped) || errors.Is(err, rpc.ErrStreamAbandoned) {
			return err
		}
		return crossed(m.pc, err)
	}
	return nil
}
