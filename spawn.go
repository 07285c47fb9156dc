package procxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/procxy/procxy/childproc"
	"github.com/procxy/procxy/transport"
)

// child is a started child process and the parent's end of its connection.
type child struct {
	proc   *childproc.Child
	conn   *os.File // the parent's end of the socketpair
	stderr *tail
	wg     sync.WaitGroup // the output forwarders
	// dlvAddr is the address of the dlv API the child runs under, once dlv
	// has announced it (Debug).
	dlvAddr atomic.Pointer[string]
}

// spawn starts the child: the same executable (or o.executable) with
// o.args, the parent's environment plus o.env, and the socketpair's child
// end as fd 3. The child dies with the parent: SIGKILL on the parent's death
// (Linux), and EOF on the socket everywhere.
func spawn(o *options) (*child, error) {
	exe := o.executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("procxy: find this executable: %w", err)
		}
	}
	parentEnd, childEnd, err := transport.Socketpair()
	if err != nil {
		return nil, err
	}
	defer childEnd.Close() // the child has its own copy
	env := append(os.Environ(), o.env...)
	env = append(env, envChild+"=1")
	args := o.args
	if o.debug != nil {
		exe, args = o.debug.Command(exe, args) // dlv passes fd 3 on to its target
	}
	p, err := childproc.Spawn(context.Background(), exe, args, o.isolate(childproc.Options{
		Dir:        o.dir,
		Env:        env,
		Stdin:      childproc.Ignore(),
		Stdout:     childproc.Pipe(),
		Stderr:     childproc.Pipe(),
		ExtraFiles: []*os.File{childEnd},
		Pdeathsig:  syscall.SIGKILL,
	}))
	if err != nil {
		parentEnd.Close()
		return nil, fmt.Errorf("procxy: start child: %w", err)
	}
	c := &child{proc: p, conn: parentEnd, stderr: newTail(32)}
	log := o.logger.With("child", o.key, "pid", p.PID())
	var dlv func(string) bool
	if o.debug != nil {
		dlv = func(line string) bool { return c.sawDebugger(line, log) }
	}
	c.wg.Go(func() { forward(p.Stdout(), log.With("stream", "stdout"), nil, dlv) })
	c.wg.Go(func() { forward(p.Stderr(), log.With("stream", "stderr"), c.stderr, nil) })
	return c, nil
}

// maxLine bounds one forwarded output line; the rest of a longer line is cut.
const maxLine = 64 << 10

// forward logs r line by line until EOF, keeping the last lines in t. A
// line that seen (when not nil) reports as handled is not logged.
func forward(r io.Reader, log *slog.Logger, t *tail, seen func(string) bool) {
	br := bufio.NewReaderSize(r, 4096)
	for {
		line, err := readLine(br)
		if seen != nil && seen(line) {
			if err != nil {
				return
			}
			continue
		}
		if line != "" || err == nil {
			log.Info(line)
			if t != nil {
				t.add(line)
			}
		}
		if err != nil {
			return
		}
	}
}

// readLine reads one line without its newline, at most maxLine bytes of it.
func readLine(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		frag, isPrefix, err := br.ReadLine()
		if b.Len() < maxLine {
			b.Write(frag[:min(len(frag), maxLine-b.Len())])
		}
		if err != nil || !isPrefix {
			return b.String(), err
		}
	}
}

// tail keeps a child's last stderr lines, and its panic report from the
// line starting with "panic: " or "fatal error: " on (bounded).
type tail struct {
	mu      sync.Mutex
	lines   []string // ring of the last n lines; guarded by mu
	next    int
	n       int
	panic   strings.Builder // guarded by mu
	inPanic bool
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) < t.n {
		t.lines = append(t.lines, line)
	} else {
		t.lines[t.next] = line
		t.next = (t.next + 1) % t.n
	}
	if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
		t.inPanic = true
		t.panic.Reset()
	}
	if t.inPanic && t.panic.Len() < maxLine {
		t.panic.WriteString(line)
		t.panic.WriteByte('\n')
	}
}

func (t *tail) snapshot() (lines []string, panic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines = append(lines, t.lines[t.next:]...)
	lines = append(lines, t.lines[:t.next]...)
	return lines, t.panic.String()
}
