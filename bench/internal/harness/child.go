package harness

import (
	"errors"
	"fmt"
	"github.com/procxy/procxy/transport"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"time"
)

// EnvRole names the server a re-executed benchmark binary runs.
const EnvRole = "PROCXYBENCH_ROLE"

// EnvChildProfile, if set in the parent's environment, makes every child
// write a CPU profile to "$EnvChildProfile.<role>.<pid>.pprof".
const EnvChildProfile = "PROCXYBENCH_CHILD_CPUPROFILE"

// envFD says what the parent passed as fd 3: "listener" or "conn".
const envFD = "PROCXYBENCH_FD"

// Transport is how the parent reaches the child.
type Transport string

const (
	// Unix: the parent listens on a socket in a fresh temp dir, passes the
	// listening fd to the child (which accepts) and dials the path.
	Unix Transport = "unix"
	// Socketpair: one end of socketpair(AF_UNIX, SOCK_STREAM) is the
	// child's fd 3; the parent keeps the other. No listener, no path.
	Socketpair Transport = "socketpair"
)

// servers maps a role to the function serving it on l in the child. Each
// contender file registers its own in init.
var servers = map[string]func(l net.Listener) error{}

// pluginServers maps a role to a go-plugin plugin.Serve call; these manage
// their own socket and exit when the host kills them.
var pluginServers = map[string]func(){}

// MaybeChild returns at once in the parent. In a child started by [Spawn]
// or by go-plugin, it serves the role named by [EnvRole] and exits.
func MaybeChild() {
	role := os.Getenv(EnvRole)
	if role == "" {
		return
	}
	exit := startChildProfile(role)
	if serve, ok := pluginServers[role]; ok {
		serve() // returns only when the host is done
		exit(0)
	}
	serve, ok := servers[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "procxybench child: unknown role %q\n", role)
		exit(2)
	}
	// The parent holds the write end of our stdin: EOF means it is done
	// with us or has died, so no child outlives a benchmark run.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		exit(0)
	}()
	f := os.NewFile(3, "procxybench-fd3")
	var l net.Listener
	var err error
	switch os.Getenv(envFD) {
	case "listener":
		l, err = net.FileListener(f)
	case "conn":
		var c net.Conn
		if c, err = net.FileConn(f); err == nil {
			l = newOneConnListener(c)
		}
	default:
		err = fmt.Errorf("bad %s=%q", envFD, os.Getenv(envFD))
	}
	f.Close() // FileListener and FileConn dup the fd
	if err == nil {
		err = serve(l)
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		fmt.Fprintf(os.Stderr, "procxybench child %s: %v\n", role, err)
		exit(1)
	}
	exit(0)
}

// startChildProfile starts a CPU profile if [EnvChildProfile] asks for one
// and returns the function that stops it and exits.
func startChildProfile(role string) (exit func(code int)) {
	prefix := os.Getenv(EnvChildProfile)
	if prefix == "" {
		return os.Exit
	}
	name := fmt.Sprintf("%s.%s.%d.pprof", prefix, strings.ReplaceAll(role, "/", "-"), os.Getpid())
	f, err := os.Create(name)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "procxybench child: cpu profile: %v\n", err)
		return os.Exit
	}
	var once sync.Once
	return func(code int) {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
		os.Exit(code)
	}
}

// Child is a running server process.
type Child struct {
	cmd   *exec.Cmd
	stdin *os.File // write end of the child's stdin; closing it stops the child
	dir   string   // temp dir holding the socket (Unix only)
	path  string   // socket path (Unix only)
	conn  net.Conn // parent end of the socketpair until Dial takes it
}

// Spawn starts os.Args[0] as the server for role, reachable over tr.
func Spawn(role string, tr Transport) (_ *Child, err error) {
	c := &Child{}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	var fd3 *os.File
	mode := "listener"
	switch tr {
	case Unix:
		// A short path: sun_path holds at most 108 bytes.
		if c.dir, err = os.MkdirTemp("", "pxb"); err != nil {
			return nil, err
		}
		c.path = filepath.Join(c.dir, "s")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: c.path, Net: "unix"})
		if err != nil {
			return nil, err
		}
		l.SetUnlinkOnClose(false) // the child owns accepting; we remove the dir
		fd3, err = l.File()
		l.Close() // the dup in fd3 keeps the socket listening
		if err != nil {
			return nil, err
		}
	case Socketpair:
		mode = "conn"
		var parent *os.File
		if parent, fd3, err = transport.Socketpair(); err != nil {
			return nil, err
		}
		c.conn, err = net.FileConn(parent)
		parent.Close()
		if err != nil {
			fd3.Close()
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown transport %q", tr)
	}
	defer fd3.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.stdin = w
	c.cmd = exec.Command(os.Args[0])
	c.cmd.Env = append(os.Environ(), EnvRole+"="+role, envFD+"="+mode)
	c.cmd.Stdin = r
	c.cmd.Stdout = os.Stderr
	c.cmd.Stderr = os.Stderr
	c.cmd.ExtraFiles = []*os.File{fd3}
	err = c.cmd.Start()
	r.Close()
	if err != nil {
		c.cmd = nil
		return nil, err
	}
	return c, nil
}

// PID is the child's process id.
func (c *Child) PID() int { return c.cmd.Process.Pid }

// Dial returns a new connection to the child. Over a socketpair there is
// exactly one, so a second Dial fails.
func (c *Child) Dial() (net.Conn, error) {
	if c.path != "" {
		return net.Dial("unix", c.path)
	}
	if c.conn == nil {
		return nil, errors.New("socketpair: the only connection is taken")
	}
	conn := c.conn
	c.conn = nil
	return conn, nil
}

// Close stops the child (stdin EOF, then SIGKILL after 5 s) and removes
// the socket directory.
func (c *Child) Close() error {
	if c.conn != nil {
		c.conn.Close()
	}
	if c.stdin != nil {
		c.stdin.Close()
	}
	var err error
	if c.cmd != nil {
		done := make(chan error, 1)
		go func() { done <- c.cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(5 * time.Second):
			_ = c.cmd.Process.Kill()
			err = <-done
		}
	}
	if c.dir != "" {
		os.RemoveAll(c.dir)
	}
	return err
}

// oneConnListener serves a single pre-connected conn (the child's end of a
// socketpair) to servers that want a net.Listener.
type oneConnListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func newOneConnListener(c net.Conn) *oneConnListener {
	l := &oneConnListener{conns: make(chan net.Conn, 1), done: make(chan struct{}), addr: c.LocalAddr()}
	l.conns <- c
	return l
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.addr }
