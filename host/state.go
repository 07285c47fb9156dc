package host

import (
	"fmt"
	"sync"
	"time"
)

// State is a module's lifecycle state (Procwire §3.7).
type State uint8

const (
	// StateIdle: defined, never spawned.
	StateIdle State = iota
	// StateStarting: a spawn attempt is running or waiting to retry; the
	// child was launched and $init has not arrived.
	StateStarting
	// StateConnecting: $init was accepted; connecting the data plane.
	StateConnecting
	// StateReady: calls are served.
	StateReady
	// StateDisconnected: the child crashed, lost its data channel or missed
	// its heartbeat; a restart follows.
	StateDisconnected
	// StateStopping: Shutdown is running.
	StateStopping
	// StateClosed: shut down by Shutdown.
	StateClosed
	// StateFailed: the spawn gave up, or the child died and is not
	// restarted (restart off or budget spent). Change.Err says why.
	StateFailed
)

func (s State) String() string {
	switch s {
	case StateIdle:
		return "idle"
	case StateStarting:
		return "starting"
	case StateConnecting:
		return "connecting"
	case StateReady:
		return "ready"
	case StateDisconnected:
		return "disconnected"
	case StateStopping:
		return "stopping"
	case StateClosed:
		return "closed"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Change is one state change of a module.
type Change struct {
	Module string
	From   State
	To     State
	// Err says why: the crash, heartbeat or data-channel error for
	// StateDisconnected and StateFailed, and the failed attempt's error for
	// StateStarting when a retry follows. Nil otherwise.
	Err error
	// PID is the child's process id when To is StateReady, else 0.
	PID  int
	Time time.Time
}

func (c Change) String() string {
	s := fmt.Sprintf("module %q: %v → %v", c.Module, c.From, c.To)
	if c.Err != nil {
		s += ": " + c.Err.Error()
	}
	return s
}

// notifier calls fn for each posted Change, in order, on one goroutine that
// exists only while changes are queued. Posting never blocks. A change
// queue grows only with restarts and spawns, which are rate-limited.
type notifier struct {
	fn func(Change)

	mu      sync.Mutex
	queue   []Change // guarded by mu
	running bool     // a goroutine is draining queue; guarded by mu
	wg      sync.WaitGroup
}

func (n *notifier) post(c Change) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queue = append(n.queue, c)
	if !n.running {
		n.running = true
		n.wg.Go(n.run)
	}
}

func (n *notifier) run() {
	for {
		n.mu.Lock()
		if len(n.queue) == 0 {
			n.running = false
			n.queue = nil
			n.mu.Unlock()
			return
		}
		c := n.queue[0]
		n.queue = n.queue[1:]
		n.mu.Unlock()
		n.fn(c)
	}
}
