// Package testworker is a small Procwire child for the host package's
// tests and examples. It has the methods of the interop workers (echo,
// echoRaw, fail, count, slow, accept, notify, getenv, crash; events
// progress and notified) and modes that misbehave on purpose, so that the
// parent's reactions to broken children can be tested without Node.js.
//
// A test binary runs it by calling Run from TestMain when EnvMode is set,
// and spawns itself with that variable to get a worker.
//
// Section numbers (§) refer to docs/PROCWIRE.md.
package testworker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/transport"
)

// EnvMode selects the mode of a test binary re-run as a worker.
const EnvMode = "HOST_TESTWORKER"

// Modes.
const (
	ModeOK             = "ok"             // a well-behaved worker
	ModeInitError      = "error"          // sends $error "cannot load model" instead of $init
	ModeMismatch       = "mismatch"       // count is a result method; getenv and event notified are missing
	ModeBadInit        = "badinit"        // $init whose schema has no events member
	ModeExit           = "exit"           // exits with status 7 before $init
	ModeSilent         = "silent"         // never sends $init
	ModeNoPong         = "nopong"         // never answers $ping
	ModeIgnoreShutdown = "ignoreshutdown" // ignores $shutdown and the end of the connection
	ModeNoise          = "noise"          // writes stray stdout and stderr lines before $init
	ModeSchemaTimeout  = "schematimeout"  // announces a 150 ms timeout for slow in $init
	ModeDropConn       = "dropconn"       // closes the data connection at once and stays alive
	ModeBadPipe        = "badpipe"        // announces a socket path nobody listens on
	ModeGrandchild     = "grandchild"     // starts "sleep 600" on its stdout and stderr, prints "grandchild <pid>" on stderr
	ModeHog            = "hog"            // allocates and keeps 32 MiB at a time, up to 512 MiB, from the start
)

// hog is what ModeHog keeps.
var hog [][]byte

// Method ids, in the order the interop workers register them.
const (
	idEcho uint16 = iota + 1
	idEchoRaw
	idFail
	idCount
	idSlow
	idAccept
	idNotify
	idGetenv
	idCrash
)

// Event ids.
const (
	evProgress uint16 = 1
	evNotified uint16 = 2
)

var stdout struct {
	sync.Mutex
	w *os.File
}

// line writes one control line to stdout with a single write.
func line(s string) {
	stdout.Lock()
	defer stdout.Unlock()
	stdout.w.WriteString(s + "\n")
}

// Run runs the worker in mode and returns the process exit status.
func Run(mode string) int {
	stdout.w = os.Stdout
	switch mode {
	case ModeExit:
		fmt.Fprintln(os.Stderr, "testworker: giving up before $init")
		return 7
	case ModeInitError:
		line(`{"jsonrpc":"2.0","method":"$error","params":{"message":"cannot load model"}}`)
		waitStdin(nil)
		return 0
	case ModeSilent:
		waitStdin(nil)
		return 0
	case ModeNoise:
		noise()
	case ModeGrandchild:
		cmd := exec.Command("sleep", "600")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "testworker:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "grandchild %d\n", cmd.Process.Pid)
	case ModeHog:
		go func() {
			for range 16 {
				b := make([]byte, 32<<20)
				for i := 0; i < len(b); i += 4096 {
					b[i] = 1
				}
				hog = append(hog, b)
				time.Sleep(20 * time.Millisecond) // a leak, not a burst
			}
		}()
	}
	ln, err := transport.ListenPrivate("procwire")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testworker:", err)
		return 1
	}
	pipe := ln.Path()
	if mode == ModeBadPipe {
		pipe += ".missing"
	}
	line(`{"jsonrpc":"2.0","method":"$init","params":{"pipe":"` + pipe + `","schema":` + schema(mode) + `,"version":"1.0.0"}}`)

	shutdown := make(chan struct{})
	go waitStdin(func(method string) {
		switch {
		case method == "$ping" && mode != ModeNoPong:
			line(`{"jsonrpc":"2.0","method":"$pong"}`)
		case method == "$shutdown" && mode != ModeIgnoreShutdown:
			close(shutdown)
		}
	})
	nc, err := ln.Accept()
	ln.Close()
	if err != nil {
		return 1
	}
	if mode == ModeDropConn {
		nc.Close()
		<-shutdown
		return 0
	}
	var token []byte
	if t, ok := os.LookupEnv("PROCWIRE_TOKEN"); ok {
		token = []byte(t)
	}
	var cp atomic.Pointer[rpc.Conn]
	conn := rpc.NewConn(nc, rpc.Options{Role: rpc.RoleChild, Handlers: handlers(&cp), Token: token})
	cp.Store(conn)
	select {
	case <-conn.Done():
	case <-shutdown:
	}
	if mode == ModeIgnoreShutdown {
		select {} // until killed
	}
	conn.Close()
	return 0
}

// waitStdin reads control lines until EOF, calling fn with each method.
// With a nil fn it only waits for EOF.
func waitStdin(fn func(method string)) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if fn == nil {
			continue
		}
		l := sc.Text()
		for _, m := range []string{"$ping", "$shutdown"} {
			if strings.HasPrefix(l, "{") && strings.Contains(l, `"method":"`+m+`"`) {
				fn(m)
			}
		}
	}
	// End of stdin: the parent is gone (Procwire §3.5).
	os.Exit(0)
}

func schema(mode string) string {
	slow := `{"id":5,"response":"result"}`
	if mode == ModeSchemaTimeout {
		slow = `{"id":5,"response":"result","timeout":150}`
	}
	switch mode {
	case ModeMismatch:
		return `{"methods":{"echo":{"id":1,"response":"result"},"echoRaw":{"id":2,"response":"result"},"fail":{"id":3,"response":"result"},"count":{"id":4,"response":"result"},"slow":` + slow + `,"accept":{"id":6,"response":"ack"},"notify":{"id":7,"response":"none"},"crash":{"id":9,"response":"none"}},"events":{"progress":{"id":1}}}`
	case ModeBadInit:
		return `{"methods":{"echo":{"id":1,"response":"result"}}}`
	}
	return `{"methods":{"echo":{"id":1,"response":"result"},"echoRaw":{"id":2,"response":"result"},"fail":{"id":3,"response":"result"},"count":{"id":4,"response":"stream"},"slow":` + slow + `,"accept":{"id":6,"response":"ack"},"notify":{"id":7,"response":"none"},"getenv":{"id":8,"response":"result"},"crash":{"id":9,"response":"none"}},"events":{"progress":{"id":1},"notified":{"id":2}}}`
}

// noise writes what a sloppy worker prints: text and non-control JSON on
// stdout, an over-long line, CR and CRLF line ends, and stderr output.
func noise() {
	line("plain text on stdout before $init")
	line(`{not json`)
	line(`{"jsonrpc":"2.0","method":"log","params":{"msg":"not a control line"}}`)
	line(strings.Repeat("x", 3<<20/2)) // 1.5 MiB
	line("cr-one\rcr-two\r\ncrlf-three\r")
	fmt.Fprintln(os.Stderr, "a line on stderr before $init")
}

type (
	failIn struct {
		Message string `msgpack:"message"`
	}
	countIn struct {
		N int `msgpack:"n"`
	}
	countOut struct {
		I int `msgpack:"i"`
	}
	slowIn struct {
		Ms          int  `msgpack:"ms"`
		IgnoreAbort bool `msgpack:"ignoreAbort"` // sleep on after an abort, as a careless method does
		Announce    bool `msgpack:"announce"`    // emit progress{Slept: 0} when it starts
	}
	slowOut struct {
		Slept int `msgpack:"slept"`
	}
	progress struct {
		Aborted bool `msgpack:"aborted"`
		Slept   int  `msgpack:"slept"`
	}
	acceptOut struct {
		Accepted bool `msgpack:"accepted"`
	}
	getenvIn struct {
		Name string `msgpack:"name"`
	}
)

func handlers(cp *atomic.Pointer[rpc.Conn]) *rpc.Mux {
	emit := func(id uint16, v any) error {
		return cp.Load().Send(context.Background(), rpc.Method{ID: id, Kind: rpc.KindNone}, v)
	}
	mux := new(rpc.Mux)
	mux.Handle(idEcho, rpc.ResultFunc(func(_ context.Context, in any) (any, error) { return in, nil }))
	mux.Handle(idEchoRaw, rpc.ResultFunc(func(_ context.Context, in []byte) ([]byte, error) { return in, nil }).WithCodec(codec.Raw))
	mux.Handle(idFail, rpc.ResultFunc(func(_ context.Context, in failIn) (any, error) { return nil, errors.New(in.Message) }))
	mux.Handle(idCount, rpc.StreamFunc(func(_ context.Context, in countIn, send func(countOut) error) error {
		for i := range in.N {
			if err := send(countOut{I: i}); err != nil {
				return err
			}
		}
		return nil
	}))
	mux.Handle(idSlow, rpc.ResultFunc(func(ctx context.Context, in slowIn) (slowOut, error) {
		start := time.Now()
		if in.Announce {
			emit(evProgress, progress{})
		}
		t := time.NewTimer(time.Duration(in.Ms) * time.Millisecond)
		defer t.Stop()
		done := ctx.Done()
		if in.IgnoreAbort {
			done = nil
		}
		select {
		case <-t.C:
			return slowOut{Slept: in.Ms}, nil
		case <-done:
			emit(evProgress, progress{Aborted: true, Slept: int(time.Since(start).Milliseconds())})
			return slowOut{}, ctx.Err()
		}
	}))
	mux.Handle(idAccept, rpc.AckFunc(func(context.Context, any) (acceptOut, error) { return acceptOut{Accepted: true}, nil }))
	mux.Handle(idNotify, rpc.SendFunc(func(_ context.Context, in any) error { return emit(evNotified, in) }))
	mux.Handle(idGetenv, rpc.ResultFunc(func(_ context.Context, in getenvIn) (*string, error) {
		if v, ok := os.LookupEnv(in.Name); ok {
			return &v, nil
		}
		return nil, nil
	}))
	mux.Handle(idCrash, rpc.SendFunc(func(context.Context, any) error {
		fmt.Fprintln(os.Stderr, "crash: exiting with status 3")
		os.Exit(3)
		return nil
	}))
	return mux
}
