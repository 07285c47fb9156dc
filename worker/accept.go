package worker

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/wire"
	"github.com/procxy/procxy/transport"
)

// acceptor enforces the single-connection and authentication rules (§8.4,
// §8.5): the first accepted connection is the candidate; while it is
// pending authentication every other connection is closed at once; a
// candidate that fails authentication is closed and the next connection
// becomes the candidate; the one that passes is adopted, and the listener
// is closed.
type acceptor struct {
	w       *Worker
	ln      *transport.UnixListener
	adopted chan *net.UnixConn // receives the adopted connection; capacity 1
	failed  chan error         // receives a fatal accept error; capacity 1
	wg      sync.WaitGroup     // the accept loop and authenticating goroutines
	stopped sync.Once

	mu        sync.Mutex
	candidate *net.UnixConn // connection pending authentication; guarded by mu
	done      bool          // a connection was adopted, or stop was called; guarded by mu
}

func (w *Worker) startAccept(ln *transport.UnixListener) *acceptor {
	a := &acceptor{w: w, ln: ln, adopted: make(chan *net.UnixConn, 1), failed: make(chan error, 1)}
	a.wg.Go(a.loop)
	return a
}

// stop closes the listener and any connection still pending authentication,
// and waits for the acceptor's goroutines. An adopted connection that Run
// has not taken is closed too.
func (a *acceptor) stop() {
	a.stopped.Do(func() {
		a.mu.Lock()
		a.done = true
		cand := a.candidate
		a.candidate = nil
		a.mu.Unlock()
		a.ln.Close()
		if cand != nil {
			cand.Close()
		}
		a.wg.Wait()
		select {
		case c := <-a.adopted:
			c.Close()
		default:
		}
	})
}

func (a *acceptor) loop() {
	for {
		c, err := a.ln.AcceptUnix()
		if err != nil {
			a.mu.Lock()
			done := a.done
			a.mu.Unlock()
			if !done && !errors.Is(err, net.ErrClosed) {
				a.failed <- err
			}
			return
		}
		a.mu.Lock()
		if a.done || a.candidate != nil {
			a.mu.Unlock()
			c.Close()
			a.w.log.Warn("worker: closed an extra connection; only one parent connection is allowed")
			continue
		}
		a.candidate = c
		a.mu.Unlock()
		if a.w.token == nil {
			a.adopt(c)
			return
		}
		a.wg.Go(func() { a.authenticate(c) })
	}
}

// adopt hands c to Run and closes the listener, which removes the socket
// file so nobody else can connect.
func (a *acceptor) adopt(c *net.UnixConn) {
	a.mu.Lock()
	if a.done || a.candidate != c {
		a.mu.Unlock()
		c.Close()
		return
	}
	a.done = true
	a.candidate = nil
	a.mu.Unlock()
	a.ln.Close()
	a.adopted <- c
}

// authenticate adopts c if its first frame is the auth frame with the
// right token; otherwise it closes c so the next connection can try.
func (a *acceptor) authenticate(c *net.UnixConn) {
	if d := a.w.opts.AuthTimeout; d > 0 {
		c.SetReadDeadline(time.Now().Add(d))
	}
	err := readAuth(c, a.w.token, a.w.opts.MaxPayload)
	if err == nil {
		err = c.SetReadDeadline(time.Time{})
	}
	if err == nil {
		a.adopt(c)
		return
	}
	// Free the slot before closing, so a parent that saw this connection
	// close can connect at once.
	a.mu.Lock()
	stopped := a.done
	if a.candidate == c {
		a.candidate = nil
	}
	a.mu.Unlock()
	c.Close()
	if !stopped {
		a.w.log.Warn("worker: rejected a connection", "err", err)
	}
}

// readAuth reads exactly the first frame from c and checks that it is the
// auth frame carrying token. It reads nothing beyond that frame, so a
// request the parent packed behind it stays in the socket for the rpc
// connection. The token is compared in constant time.
func readAuth(c io.Reader, token []byte, max int) error {
	var hb [wire.HeaderSize]byte
	if _, err := io.ReadFull(c, hb[:]); err != nil {
		return fmt.Errorf("%w: reading the auth frame: %w", rpc.ErrAuth, err)
	}
	h, _ := wire.ParseHeader(hb[:])
	if err := h.Validate(max); err != nil {
		return fmt.Errorf("%w: %w", rpc.ErrAuth, err)
	}
	if h.Method != wire.MethodAuth {
		return fmt.Errorf("%w: first frame has method id %#04x, want the auth frame (%#04x)", rpc.ErrAuth, h.Method, wire.MethodAuth)
	}
	if int(h.Len) != len(token) {
		return fmt.Errorf("%w: wrong token", rpc.ErrAuth)
	}
	got := make([]byte, h.Len)
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("%w: reading the token: %w", rpc.ErrAuth, err)
	}
	if subtle.ConstantTimeCompare(got, token) != 1 {
		return fmt.Errorf("%w: wrong token", rpc.ErrAuth)
	}
	return nil
}
