package host_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procxy/procxy/host"
)

// ---- log sink --------------------------------------------------------------

// record is one log record, with its attributes flattened to strings.
type record struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// logSink is a slog.Handler that keeps every record, for assertions.
type logSink struct {
	mu      *sync.Mutex
	records *[]record
	changed *chan struct{}
	attrs   []slog.Attr
}

func newLogSink() *logSink {
	ch := make(chan struct{})
	return &logSink{mu: new(sync.Mutex), records: new([]record), changed: &ch}
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }

func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	rec := record{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	for _, a := range s.attrs {
		rec.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { rec.Attrs[a.Key] = a.Value.String(); return true })
	s.mu.Lock()
	defer s.mu.Unlock()
	*s.records = append(*s.records, rec)
	close(*s.changed)
	*s.changed = make(chan struct{})
	return nil
}

func (s *logSink) WithAttrs(as []slog.Attr) slog.Handler {
	c := *s
	c.attrs = append(append([]slog.Attr(nil), s.attrs...), as...)
	return &c
}

func (s *logSink) WithGroup(string) slog.Handler { return s }

// wait returns the first record matching pred, waiting up to 20 s.
func (s *logSink) wait(t testing.TB, what string, pred func(record) bool) record {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		for _, r := range *s.records {
			if pred(r) {
				s.mu.Unlock()
				return r
			}
		}
		wake := *s.changed
		s.mu.Unlock()
		select {
		case <-wake:
		case <-deadline.C:
			t.Fatalf("no log record %s after 20s", what)
		}
	}
}

// output waits for a line of the child's output on stream whose text contains sub.
func (s *logSink) output(t testing.TB, stream, sub string) record {
	t.Helper()
	return s.wait(t, fmt.Sprintf("%s line containing %q", stream, sub), func(r record) bool {
		return r.Attrs["stream"] == stream && strings.Contains(r.Msg, sub)
	})
}

// ---- frame tap -------------------------------------------------------------

// Frame header fields (protocol §5.2).
const (
	methodAuth  = 0xFFFE
	methodAbort = 0xFFFF
)

// frame is the header of one frame seen by a tap.
type frame struct {
	Out     bool // parent → child
	Method  uint16
	Flags   byte
	ID      uint32 // as on the wire
	Len     uint32
	Payload []byte // kept for AUTH frames only
}

// tap wraps a module's data-plane connection and records the header of
// every frame in both directions. With corruptAuth it flips a byte of the
// AUTH token on the wire.
type tap struct {
	rwc         io.ReadWriteCloser
	corruptAuth bool

	out, in framer

	mu      sync.Mutex
	frames  []frame
	changed chan struct{}
}

// framer follows the frame boundaries of one direction.
type framer struct {
	hdr     [11]byte
	n       int    // header bytes collected
	left    uint32 // payload bytes still to come
	auth    bool   // the current payload is an AUTH token
	payload []byte // AUTH payload collected so far
}

func newTap(rwc io.ReadWriteCloser, corruptAuth bool) *tap {
	return &tap{rwc: rwc, corruptAuth: corruptAuth, changed: make(chan struct{})}
}

func (t *tap) record(f frame) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.frames = append(t.frames, f)
	close(t.changed)
	t.changed = make(chan struct{})
}

// Write parses outgoing frames; header bytes are held back until the
// header is complete, so it can be rewritten.
func (t *tap) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		ps := &t.out
		if ps.left == 0 && ps.n < 11 {
			k := copy(ps.hdr[ps.n:], p)
			ps.n += k
			p = p[k:]
			if ps.n < 11 {
				break
			}
			f := t.header(ps, true)
			if _, err := t.rwc.Write(ps.hdr[:]); err != nil {
				return 0, err
			}
			ps.n = 0
			if f.Len == 0 {
				t.record(f)
			} else {
				ps.left = f.Len
				if !ps.auth {
					t.record(f)
				}
			}
			continue
		}
		k := min(uint32(len(p)), ps.left)
		chunk := p[:k]
		if ps.auth {
			chunk = append([]byte(nil), chunk...)
			ps.payload = append(ps.payload, chunk...)
			if t.corruptAuth && len(ps.payload) == len(chunk) {
				chunk[0] ^= 0x01
			}
		}
		if _, err := t.rwc.Write(chunk); err != nil {
			return 0, err
		}
		ps.left -= k
		p = p[k:]
		if ps.auth && ps.left == 0 {
			t.record(frame{Out: true, Method: methodAuth, Len: uint32(len(ps.payload)), Payload: ps.payload})
			ps.auth, ps.payload = false, nil
		}
	}
	return total, nil
}

// header decodes ps.hdr and reports the frame.
func (t *tap) header(ps *framer, out bool) frame {
	h := ps.hdr[:]
	f := frame{Out: out, Method: binary.BigEndian.Uint16(h[0:2]), Flags: h[2],
		ID: binary.BigEndian.Uint32(h[3:7]), Len: binary.BigEndian.Uint32(h[7:11])}
	ps.auth = out && f.Method == methodAuth && f.Len > 0
	return f
}

// Read reads whole headers first, so that they can be rewritten, then
// passes payload bytes through.
func (t *tap) Read(p []byte) (int, error) {
	ps := &t.in
	if ps.left == 0 && ps.n == 0 {
		if _, err := io.ReadFull(t.rwc, ps.hdr[:]); err != nil {
			return 0, err
		}
		f := t.header(ps, false)
		t.record(f)
		ps.left = f.Len
		ps.n = 11 // header bytes not yet handed out
	}
	if ps.n > 0 {
		off := 11 - ps.n
		k := copy(p, ps.hdr[off:])
		ps.n -= k
		return k, nil
	}
	if uint32(len(p)) > ps.left {
		p = p[:ps.left]
	}
	k, err := t.rwc.Read(p)
	ps.left -= uint32(k)
	return k, err
}

func (t *tap) Close() error { return t.rwc.Close() }

// all returns the frames seen so far.
func (t *tap) all() []frame {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]frame(nil), t.frames...)
}

// wait returns the first frame matching pred, waiting up to 20 s.
func (t *tap) wait(tb testing.TB, what string, pred func(frame) bool) frame {
	tb.Helper()
	return t.waitFrom(tb, 0, what, pred)
}

// waitFrom is wait among the frames from index from on.
func (t *tap) waitFrom(tb testing.TB, from int, what string, pred func(frame) bool) frame {
	tb.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		t.mu.Lock()
		for _, f := range t.frames[min(from, len(t.frames)):] {
			if pred(f) {
				t.mu.Unlock()
				return f
			}
		}
		wake := t.changed
		t.mu.Unlock()
		select {
		case <-wake:
		case <-deadline.C:
			tb.Fatalf("no frame %s after 20s", what)
		}
	}
}

// taps installs a tap on every connection of m and returns a function
// that yields the latest one.
func taps(m *host.Module, corruptAuth bool) func() *tap {
	var mu sync.Mutex
	var last *tap
	host.WrapConn(m, func(rwc io.ReadWriteCloser) io.ReadWriteCloser {
		tp := newTap(rwc, corruptAuth)
		mu.Lock()
		last = tp
		mu.Unlock()
		return tp
	})
	return func() *tap {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// waitFor polls cond until it holds, failing after 20 s. It is for
// conditions with no event to wait on (a callback's side effect).
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met after 20s")
		}
		time.Sleep(time.Millisecond)
	}
}
