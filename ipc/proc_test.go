//go:build linux

package ipc_test

// The process harness: the test binary re-runs itself as an ipc server or
// client process (childMain), driven by JSON commands on its stdin and
// reporting JSON events on its stdout. A child never outlives its test: it
// dies with the test process (Pdeathsig), exits when its stdin closes, and
// the test's cleanup kills and reaps it.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/procxy/procxy/ipc"
)

// noOrphans runs the tests, then fails the run if a child process is
// still alive: every test must have ended the processes it started.
type noOrphans struct{ m *testing.M }

func (n noOrphans) Run() int {
	code := n.m.Run()
	if left := liveChildren(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "ipc tests: child processes outlived their tests: %v\n", left)
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		return 1
	}
	return code
}

// liveChildren lists this process's children that have not exited.
func liveChildren() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	me := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b)[i+1:])
		if len(f) >= 2 && f[1] == strconv.Itoa(me) && f[0] != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// proc is a running child process.
type proc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	ready  event
	stderr *syncBuffer // nil: the child's stderr is the test's

	inMu sync.Mutex
	seq  atomic.Int64

	mu      sync.Mutex
	replies map[int]chan event
	queues  map[string][]event
	changed chan struct{} // closed and replaced when an event arrives
	killed  bool

	exited chan struct{} // closed once the process has exited and been reaped
	state  *os.ProcessState
}

// syncBuffer is a text buffer safe for concurrent writes and reads, that
// can wait for a text to appear.
type syncBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{} // closed and replaced by each write
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor waits until the buffer contains text and returns the line that
// has it.
func (b *syncBuffer) waitFor(t testing.TB, text string) string {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		b.mu.Lock()
		s := b.b.String()
		if i := strings.Index(s, text); i >= 0 {
			b.mu.Unlock()
			start := strings.LastIndexByte(s[:i], '\n') + 1
			end, _, _ := strings.Cut(s[start:], "\n")
			return end
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("no %q in the output within %v; it has:\n%s", text, waitLimit, s)
		}
	}
}

// waitLimit bounds every wait for a child, so that a hang becomes a
// failure that says what was awaited rather than a test timeout.
const waitLimit = 90 * time.Second

// startProc starts a child with cfg and waits until it is ready. With
// captureStderr, its stderr is kept in p.stderr instead of shown.
func startProc(t testing.TB, name string, cfg childConfig, captureStderr bool) *proc {
	t.Helper()
	spec, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec), "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{t: t, name: name, cmd: cmd, replies: make(map[int]chan event), queues: make(map[string][]event),
		changed: make(chan struct{}), exited: make(chan struct{})}
	if captureStderr {
		p.stderr = &syncBuffer{}
		cmd.Stderr = p.stderr
	} else {
		cmd.Stderr = os.Stderr
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.read(stdout) // ends when the child exits; the cleanup waits for it
	t.Cleanup(p.stop)
	p.ready = p.await("ready")
	return p
}

// read dispatches the child's events, then reaps it.
func (p *proc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue
		}
		p.mu.Lock()
		if e.ID != 0 {
			if ch := p.replies[e.ID]; ch != nil {
				ch <- e
				delete(p.replies, e.ID)
			}
		} else {
			p.queues[e.Kind] = append(p.queues[e.Kind], e)
			close(p.changed)
			p.changed = make(chan struct{})
		}
		p.mu.Unlock()
	}
	io.Copy(io.Discard, r)
	_ = p.cmd.Wait()
	p.state = p.cmd.ProcessState
	close(p.exited)
}

// stop ends the child: politely (stdin closes, it closes its connection and
// exits), then by force. A child that was not killed must exit cleanly, so
// that a data race in it (exit status 66) fails the test.
func (p *proc) stop() {
	p.stdin.Close()
	t := time.NewTimer(waitLimit)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.t.Errorf("%s: did not exit within %v after its stdin closed; killing it", p.name, waitLimit)
		p.kill()
	}
	p.mu.Lock()
	killed := p.killed
	p.mu.Unlock()
	if !killed && !p.state.Success() {
		p.t.Errorf("%s exited with %v", p.name, p.state)
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill() {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once it runs
	<-p.exited
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

// start sends cmd and returns a channel that gets the child's answer. It
// may be used off the test goroutine: failures arrive as answers with Err
// set.
func (p *proc) start(cmd command) <-chan event {
	cmd.ID = int(p.seq.Add(1))
	ch := make(chan event, 1)
	p.mu.Lock()
	p.replies[cmd.ID] = ch
	p.mu.Unlock()
	b, _ := json.Marshal(cmd)
	p.inMu.Lock()
	_, err := p.stdin.Write(append(b, '\n'))
	p.inMu.Unlock()
	if err != nil {
		ch <- event{ID: cmd.ID, Err: fmt.Sprintf("%s: send %s: %v", p.name, cmd.Op, err)}
		return ch
	}
	out := make(chan event, 1)
	go func() { // ends with the answer, the child's exit or waitLimit
		t := time.NewTimer(waitLimit)
		defer t.Stop()
		select {
		case e := <-ch:
			out <- e
		case <-p.exited:
			select {
			case e := <-ch:
				out <- e
			default:
				out <- event{ID: cmd.ID, Err: fmt.Sprintf("%s exited (%v) before answering %s", p.name, p.state, cmd.Op)}
			}
		case <-t.C:
			out <- event{ID: cmd.ID, Err: fmt.Sprintf("%s: no answer to %s %s within %v", p.name, cmd.Op, cmd.Subject, waitLimit)}
		}
	}()
	return out
}

// do sends cmd and returns the child's answer.
func (p *proc) do(cmd command) event {
	p.t.Helper()
	return <-p.start(cmd)
}

// must is do for a command that must succeed.
func (p *proc) must(cmd command) event {
	p.t.Helper()
	e := p.do(cmd)
	if e.Err != "" {
		p.t.Fatalf("%s: %s %s: %s", p.name, cmd.Op, cmd.Subject, e.Err)
	}
	return e
}

// await returns the next event of kind, waiting for it.
func (p *proc) await(kind string) event {
	p.t.Helper()
	t := time.NewTimer(waitLimit)
	defer t.Stop()
	for {
		p.mu.Lock()
		if q := p.queues[kind]; len(q) > 0 {
			e := q[0]
			p.queues[kind] = q[1:]
			p.mu.Unlock()
			return e
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.exited:
			// Events read before the exit are queued already.
			p.mu.Lock()
			n := len(p.queues[kind])
			p.mu.Unlock()
			if n == 0 {
				p.t.Fatalf("%s exited (%v) while the test waited for %q", p.name, p.state, kind)
			}
		case <-t.C:
			p.t.Fatalf("%s: no %q event within %v", p.name, kind, waitLimit)
		}
	}
}

// awaitState returns the next state event with state s.
func (p *proc) awaitState(s ipc.State) event {
	p.t.Helper()
	for {
		if e := p.await("state"); e.Data == s.String() {
			return e
		}
	}
}

// pending returns the events of kind received and not yet taken.
func (p *proc) pending(kind string) []event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]event(nil), p.queues[kind]...)
}

// rss returns the process's resident set size and its peak, in bytes.
func (p *proc) rss() (now, peak int64) {
	p.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		p.t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		for key, v := range map[string]*int64{"VmRSS:": &now, "VmHWM:": &peak} {
			if rest, ok := strings.CutPrefix(line, key); ok {
				kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
				*v = kb << 10
			}
		}
	}
	return now, peak
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// awaitTotal waits until the procs together have received n events of
// kind, and returns them by proc (leaving them queued).
func awaitTotal(t testing.TB, kind string, n int, procs ...*proc) [][]event {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		got := make([][]event, len(procs))
		total := 0
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)}}
		for i, p := range procs {
			p.mu.Lock()
			got[i] = append([]event(nil), p.queues[kind]...)
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(p.changed)},
				reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(p.exited)})
			p.mu.Unlock()
			total += len(got[i])
		}
		if total >= n {
			return got
		}
		if i, _, _ := reflect.Select(cases); i == 0 {
			t.Fatalf("got %d %q events of %d within %v", total, kind, n, waitLimit)
		} else if i%2 == 0 {
			t.Fatalf("%s exited while the test waited for %q events", procs[i/2-1].name, kind)
		}
	}
}
