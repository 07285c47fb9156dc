package rpc

import (
	"context"
	"fmt"
	"iter"
	"sync"

	"github.com/procxy/procxy/internal/readturn"
	"github.com/procxy/procxy/observe"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/rpc/wire"
)

// Stream is the caller's end of a stream call: the chunks the peer sends,
// in order, then the end or an error. At most Options.StreamBuffer chunks
// wait in memory; past that the connection stops reading until the consumer
// catches up, so a slow consumer slows the producer instead of growing memory.
//
// Next and Close may be called from one goroutine at a time; Close may also be
// called concurrently with Next.
type Stream struct {
	conn  *Conn
	id    uint32
	cl    *call
	resp  codec.Codec
	ctx   context.Context
	items chan chunk    // buffered chunks; closed never
	gone  chan struct{} // closed by Close: the reader stops delivering

	mu       sync.Mutex
	closed   bool  // guarded by mu
	finished bool  // the terminal item was queued; guarded by mu
	needs    bool  // counted in the connection's need for a reader; guarded by mu
	err      error // the terminal error seen by Next
	stop     context.CancelFunc
	obs      *streamObserved // nil without an Options.Observer
}

type chunk struct {
	payload []byte
	owned   bool
	end     bool
	err     error
}

// OpenStream sends a request for a stream method and returns the stream.
// Cancelling ctx aborts the call: the peer gets an abort frame and Next
// returns ctx.Err().
func (c *Conn) OpenStream(ctx context.Context, m Method, in any) (*Stream, error) {
	if m.Kind != KindStream {
		return nil, fmt.Errorf("rpc: OpenStream on a %s method %d", m.Kind, m.ID)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var o *observed
	if c.opts.Observer != nil {
		o = c.startCall(ctx, m, observe.Stream)
	}
	req, resp := m.codecs(c)
	vec, pooled, err := encode(req, in)
	if err != nil {
		if o != nil {
			c.endCall(o, 0, 0, err)
		}
		return nil, err
	}
	if pooled {
		defer putVec(vec)
	}
	s := &Stream{conn: c, resp: resp, items: make(chan chunk, c.opts.StreamBuffer), gone: make(chan struct{})}
	if o != nil {
		s.obs = &streamObserved{o: o, out: vec.Len()}
	}
	s.cl = &call{kind: KindStream, stream: s}
	if s.id, err = c.register(s.cl); err != nil {
		s.endObserved(err)
		return nil, err
	}
	c.turn.Need() // chunks arrive while no caller reads
	s.needs = true
	s.ctx, s.stop = context.WithCancel(ctx)
	if err := c.sendRequest(m.ID, s.id, vec, o); err != nil {
		s.endObserved(err)
		s.Close()
		return nil, err
	}
	return s, nil
}

// deliver queues one chunk. A background reader blocks while the buffer is
// full, which stops the connection's reading: that is the backpressure. A
// waiting caller that read the chunk must not block: it leaves the chunk to
// the background reader.
func (s *Stream) deliver(f wire.Frame, background bool) readturn.Status {
	ch := chunk{payload: f.Payload, owned: f.Owned}
	if !f.Owned {
		ch.payload = append([]byte(nil), f.Payload...)
	}
	if !background {
		select {
		case s.items <- ch:
		case <-s.gone:
		default:
			s.conn.held = func() readturn.Status { s.put(ch); return readturn.Continue }
			return readturn.Yield
		}
		return readturn.Continue
	}
	s.put(ch)
	return readturn.Continue
}

func (s *Stream) put(ch chunk) {
	select {
	case s.items <- ch:
	case <-s.gone:
	case <-s.conn.done:
	}
}

// finish queues the terminal item; err nil means a normal end.
func (s *Stream) finish(err error) {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return
	}
	s.finished = true
	s.mu.Unlock()
	select {
	case s.items <- chunk{end: true, err: err}:
	case <-s.gone:
	case <-s.conn.done:
		// The connection ended while the buffer was full: Next reports
		// the connection's error once it has drained what arrived.
	}
}

// Next decodes the next chunk into v. It returns false when the stream is
// over; Err then tells whether it ended normally.
func (s *Stream) Next(v any) bool {
	if s.err != nil {
		return false
	}
	var it chunk
	select {
	case it = <-s.items:
	default:
		select {
		case it = <-s.items:
		case <-s.ctx.Done():
			s.err = s.ctx.Err()
			s.endObserved(s.err)
			s.Close()
			return false
		case <-s.conn.done:
			select {
			case it = <-s.items: // deliver what arrived before the end
			default:
				s.err = s.conn.closedErr()
				s.endObserved(s.err)
				return false
			}
		}
	}
	if it.end {
		s.err = it.err
		if s.err == nil {
			s.err = errEnd
		}
		s.endObserved(it.err)
		s.unneed()
		return false
	}
	if s.obs != nil {
		s.obs.in.Add(int64(len(it.payload)))
	}
	if err := unmarshal(s.resp, it.payload, it.owned, v); err != nil {
		s.err = fmt.Errorf("rpc: decode stream chunk: %w", err)
		s.endObserved(s.err)
		s.Close()
		return false
	}
	return true
}

var errEnd = fmt.Errorf("rpc: end of stream")

// unneed tells the connection this stream no longer needs a reader.
func (s *Stream) unneed() {
	s.mu.Lock()
	needs := s.needs
	s.needs = false
	s.mu.Unlock()
	if needs {
		s.conn.turn.Unneed()
	}
}

// Err returns the error that ended the stream, or nil if it ended normally
// or has not ended.
func (s *Stream) Err() error {
	if s.err == errEnd {
		return nil
	}
	return s.err
}

// Close stops the stream. If it has not ended, the peer gets an abort frame
// and the producer's send fails. Close is idempotent.
func (s *Stream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.endObserved(context.Canceled) // the consumer stopped before the end
	s.unneed()
	close(s.gone)
	if s.conn.unregister(s.id, s.cl) {
		s.conn.abort(s.id)
	}
	if s.stop != nil {
		s.stop()
	}
	return nil
}

// StreamOf calls a stream method and yields its chunks decoded as T. The
// request is sent when iteration starts; breaking out of the loop aborts the
// call. A failure is yielded once as the last pair, with the zero T.
func StreamOf[T any](ctx context.Context, c *Conn, m Method, in any) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		s, err := c.OpenStream(ctx, m, in)
		if err != nil {
			var zero T
			yield(zero, err)
			return
		}
		defer s.Close()
		for {
			var v T
			if !s.Next(&v) {
				break
			}
			if !yield(v, nil) {
				return
			}
		}
		if err := s.Err(); err != nil {
			var zero T
			yield(zero, err)
		}
	}
}
