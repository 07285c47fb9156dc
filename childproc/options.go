package childproc

import (
	"os"
	"syscall"
	"time"
)

// Defaults used when the matching Options field is zero.
const (
	// DefaultMaxBuffer is Node's default maxBuffer: 1 MiB per output stream.
	DefaultMaxBuffer = 1 << 20
	// DefaultMaxMessageSize bounds one IPC message (its JSON text, without
	// the terminating newline) in both directions. Node's own limit is
	// about 512 MiB.
	DefaultMaxMessageSize = 16 << 20
	// DefaultShell is the shell used by Exec and ExecSync, and by Spawn and
	// ExecFile when Options.Shell is set to it (Node's shell: true).
	DefaultShell = "/bin/sh"
	// DefaultExecPath is the program Fork runs when Options.ExecPath is empty.
	DefaultExecPath = "node"
)

// Options configures how a child is started. The zero value is valid; each
// zero field means Node's default (or the Go equivalent, where noted). The
// same struct serves every function; fields that do not apply to a function
// are ignored by it, as the field comments say. Options is read at the
// start of each call and never written.
type Options struct {
	// Dir is the child's working directory; empty means the parent's
	// (Node's cwd). A relative program path containing a slash is resolved
	// against it.
	Dir string

	// Env is the child's environment as "KEY=value" entries. Nil means the
	// parent's environment (os.Environ at the time of the call); an empty,
	// non-nil slice means an empty environment. Of duplicate keys the last
	// one is kept, as in os/exec. The program is looked up in
	// this environment's PATH, as Node does. NODE_CHANNEL_FD and
	// NODE_CHANNEL_SERIALIZATION_MODE are always removed (childproc adds
	// them back, correctly, when it creates an IPC channel), and
	// NODE_UNIQUE_ID is removed when it does.
	Env []string

	// Argv0 replaces argv[0], which is otherwise the program name as given.
	Argv0 string

	// Stdin, Stdout and Stderr say what the child's fds 0–2 are. The zero
	// Stdio means Pipe for Spawn and the blocking functions and Inherit for
	// Fork. Exec and ExecFile ignore these fields: their output is always
	// captured, and their stdin is Input, or the null device.
	Stdin, Stdout, Stderr Stdio

	// ExtraFiles become the child's fds 3, 4, …; a nil entry leaves that fd
	// closed (Node's 'ignore' past index 2). The files stay open in the
	// parent; the caller closes them.
	ExtraFiles []*os.File

	// IPC adds a Node.js IPC channel ('json' serialization) at fd
	// 3+len(ExtraFiles), like an 'ipc' entry in Node's stdio array, and
	// sets NODE_CHANNEL_FD and NODE_CHANNEL_SERIALIZATION_MODE. Fork always
	// sets it; Exec, ExecFile and the blocking functions ignore it.
	// [Child.Channel] returns the parent's end.
	IPC bool

	// MaxMessageSize bounds one IPC message, in bytes of JSON text, in both
	// directions; zero means DefaultMaxMessageSize. A larger incoming
	// message ends the channel with ErrMessageTooLarge before it is read
	// into memory; a larger outgoing one is refused by Send with the same
	// error. Received messages waiting for the consumer hold at most about
	// max(256 MiB, MaxMessageSize) bytes.
	MaxMessageSize int

	// ExecPath is the program Fork runs; empty means DefaultExecPath
	// ("node"), looked up in the child's PATH. Ignored by other functions.
	ExecPath string

	// ExecArgv are arguments Fork passes to ExecPath before the module path
	// (Node's execArgv). Nil means none. Ignored by other functions.
	ExecArgv []string

	// Shell, when non-empty, runs the command through this shell as
	// Shell -c "file args..." with the arguments joined by single spaces and
	// no quoting, exactly as Node does for shell: true (use DefaultShell for
	// that). Exec and ExecSync always use a shell: empty means DefaultShell.
	Shell string

	// Detached starts the child in a new session (setsid), so it is the
	// leader of its own session and process group. Unlike Node, Exec and
	// ExecFile honour it too.
	Detached bool

	// ProcessGroup starts the child in a new process group (setpgid)
	// without a new session. Detached implies it. [Child.KillGroup] needs
	// one of the two.
	ProcessGroup bool

	// KillGroup makes the automatic kills (Timeout, context cancellation,
	// MaxBuffer overflow) signal the child's whole process group, so
	// grandchildren such as a shell's background jobs die too. It implies
	// ProcessGroup. Node kills only the direct child.
	KillGroup bool

	// Credential, when non-nil, sets the child's user and group ids (Node's
	// uid and gid). Supplementary groups are cleared. Needs privileges;
	// without them the spawn fails with EPERM.
	Credential *Credential

	// Pdeathsig is a signal the child receives when its parent process
	// dies (Linux only, else Spawn fails with errors.ErrUnsupported; zero
	// means none). It is not a Node option; hosts use it so that workers do
	// not outlive them. Linux sends it when the OS thread that forked the
	// child ends, so childproc forks such children from a thread of its own
	// that lives as long as they do: starting one from a goroutine locked
	// with runtime.LockOSThread, whose thread ends with it, is safe.
	Pdeathsig syscall.Signal

	// Limits are resource limits the child runs under (Linux only, else
	// Spawn fails with an error wrapping errors.ErrUnsupported; the zero
	// value means none). They are in force before the program's first
	// instruction: the child stops at its exec under ptrace(2), and
	// childproc sets them with prlimit(2) before it lets it go on. Where
	// the child cannot be traced (this process runs under strace -f or a
	// debugger), they are set right after the exec instead, and the
	// program may run its first instructions without them. A child with a
	// Credential gets them too, without CAP_SYS_RESOURCE (which containers
	// usually drop): childproc's spawner thread takes the child's real ids
	// for the prlimit(2), as the kernel then allows. A limit above this
	// process's own hard limit needs CAP_SYS_RESOURCE.
	Limits Limits

	// NoNewPrivs starts the child with no_new_privs set (Linux only, else
	// Spawn fails with an error wrapping errors.ErrUnsupported): it and
	// its descendants cannot gain privileges through set-user-id
	// executables or file capabilities, and may install seccomp filters.
	// childproc forks such children from a thread of its own on which the
	// flag is set; no other code of this process runs on that thread.
	NoNewPrivs bool

	// Timeout, when positive, sends KillSignal to the child once it has run
	// this long. It is reported as ErrTimeout in the *ExitError. Zero means
	// no timeout.
	Timeout time.Duration

	// KillSignal is the signal used by Timeout, context cancellation and
	// MaxBuffer overflow; zero means SIGTERM.
	KillSignal syscall.Signal

	// StopGrace, when positive, sends SIGKILL if the child is still
	// running this long after childproc sent it KillSignal. Zero means
	// never, as in Node: a child that ignores KillSignal keeps running and
	// the call keeps waiting.
	StopGrace time.Duration

	// MaxBuffer is the largest output kept per stream (stdout and stderr
	// counted separately) by Exec, ExecFile and the blocking functions.
	// Zero means DefaultMaxBuffer; negative means unlimited. Past it the
	// output is cut to exactly MaxBuffer bytes, the child gets KillSignal,
	// and the call fails with a *MaxBufferError.
	MaxBuffer int

	// Encoding converts captured output before it is returned. The zero
	// value, EncodingBuffer, returns the bytes unchanged.
	Encoding Encoding

	// Input is written to the child's stdin, which is then closed, by Exec,
	// ExecFile and the blocking functions when their stdin is a pipe.
	// Spawn and Fork ignore it: write to [Child.Stdin] instead.
	Input []byte
}

// Limits are setrlimit limits for a child; a zero field means no limit and
// a negative one is an error. Each is set as both the soft and the hard
// limit, so the child cannot raise it. A child that exceeds one is ended
// by the kernel or fails its allocation (see [LimitCause]).
type Limits struct {
	// AddressSpace bounds the child's virtual memory in bytes (RLIMIT_AS):
	// mappings past it fail, which most runtimes report as out of memory.
	// It counts reservations, not use: a Go program needs some hundreds of
	// MiB to start, and one built with -race a few GiB.
	AddressSpace int64
	// Data bounds the data segment and private writable mappings, in
	// bytes (RLIMIT_DATA).
	Data int64
	// CPUTime bounds the CPU time the child uses, rounded up to whole
	// seconds (RLIMIT_CPU). The kernel sends SIGXCPU at the limit, which
	// ends most programs but not Go ones, and SIGKILL a second later.
	CPUTime time.Duration
	// OpenFiles bounds the child's file descriptor numbers (RLIMIT_NOFILE):
	// opening one more fails with EMFILE.
	OpenFiles int
}

// Credential is a user and group id for the child.
type Credential struct {
	UID, GID uint32
}

// Stdio says what one of the child's standard fds is connected to. Build
// one with [Pipe], [Inherit], [Ignore] or [FromFile]; the zero value means
// the default of the function it is passed to.
type Stdio struct {
	mode stdioMode
	file *os.File
}

type stdioMode uint8

const (
	stdioDefault stdioMode = iota
	stdioPipe
	stdioInherit
	stdioIgnore
	stdioFile
)

// Pipe connects the fd to a pipe whose other end is [Child.Stdin],
// [Child.Stdout] or [Child.Stderr] (Node's 'pipe'; Node uses a socketpair,
// childproc a pipe(2)).
func Pipe() Stdio { return Stdio{mode: stdioPipe} }

// Inherit gives the child the parent's fd of the same number (Node's 'inherit').
func Inherit() Stdio { return Stdio{mode: stdioInherit} }

// Ignore connects the fd to the null device (Node's 'ignore').
func Ignore() Stdio { return Stdio{mode: stdioIgnore} }

// FromFile gives the child f (Node's integer fd or stream entry). The file
// stays open in the parent; the caller closes it. A nil f means Ignore.
func FromFile(f *os.File) Stdio {
	if f == nil {
		return Ignore()
	}
	return Stdio{mode: stdioFile, file: f}
}

func (s Stdio) or(def stdioMode) stdioMode {
	if s.mode == stdioDefault {
		return def
	}
	return s.mode
}

// resolved holds Options with defaults filled in, on our own copy.
type resolved struct {
	Options
	killSignal syscall.Signal
	maxBuffer  int // < 0 means unlimited
	maxMessage int
}

func resolve(o Options) resolved {
	r := resolved{Options: o, killSignal: o.KillSignal, maxBuffer: o.MaxBuffer, maxMessage: o.MaxMessageSize}
	if r.killSignal == 0 {
		r.killSignal = syscall.SIGTERM
	}
	if r.maxBuffer == 0 {
		r.maxBuffer = DefaultMaxBuffer
	}
	if r.maxMessage <= 0 {
		r.maxMessage = DefaultMaxMessageSize
	}
	if r.KillGroup {
		r.ProcessGroup = true
	}
	return r
}
