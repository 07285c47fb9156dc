package ipc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"
)

// RequestStream sends m as a request whose answer is a stream of messages,
// and yields them in order. A responder answers with [Msg.Stream]; one
// that answers with a single Respond gives a stream of one message. The
// receiver grants credit (DefaultWindow messages at a time), so a slow
// consumer slows the responder instead of growing memory on either side.
// Breaking out of the loop, or ctx ending, cancels the responder's
// context. A failure is yielded last, as a *RequestError.
func (c *Conn) RequestStream(ctx context.Context, m *Msg, opts ...RequestOption) iter.Seq2[*Msg, error] {
	return func(yield func(*Msg, error) bool) {
		var o requestOpts
		for _, opt := range opts {
			opt.applyRequest(&o)
		}
		fail := func(err error) { yield(nil, &RequestError{Subject: m.Subject, Err: err}) }
		req := *m
		req.Reply = ""
		if err := c.checkPublish(&req); err != nil {
			fail(err)
			return
		}
		f, err := c.newFlow(ctx, DefaultWindow)
		if err != nil {
			fail(err)
			return
		}
		defer f.finish(nil)
		req.Reply = f.self
		req.meta = meta{kind: kindStreamReq, credit: uint32(f.window), keepalive: o.keepalive}
		if dl, ok := ctx.Deadline(); ok {
			req.meta.timeout = time.Until(dl)
		}
		if err := c.publish(&req, FlagRequest); err != nil {
			fail(err)
			return
		}
		stop := c.watchKeepalive(ctx, f, o.keepalive)
		defer stop()
		for {
			r, err := f.recv(ctx)
			if err == errEnd {
				return
			}
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, ErrStreamLost) {
					c.abandon(f)
				}
				fail(err)
				return
			}
			if r.meta.kind == kindGo {
				continue
			}
			if !yield(r, nil) {
				c.abandon(f)
				return
			}
			if r.meta.kind != kindChunk { // a plain reply: the whole answer
				return
			}
		}
	}
}

// abandon tells the other end of f, and the server, that this end gave up.
func (c *Conn) abandon(f *flow) {
	_ = f.control(meta{kind: kindCancel}, 0)
	if err := c.tr.Cancel(f.self); err != nil {
		c.log.Debug("ipc: cannot send a cancellation", "err", err)
	}
}

// watchKeepalive fails f when its peer has said nothing for three
// keepalive intervals; it returns a function that stops watching.
func (c *Conn) watchKeepalive(ctx context.Context, f *flow, d time.Duration) func() {
	if d <= 0 {
		return func() {}
	}
	stop := make(chan struct{})
	c.wg.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if f.silentFor() > 3*d {
					f.fail(fmt.Errorf("%w: no sign of life for %v", ErrResponderGone, 3*d))
					return
				}
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
		}
	})
	return func() { close(stop) }
}

// StreamWriter is a responder's end of a streamed reply (see [Msg.Stream]).
// It is not safe for concurrent use.
type StreamWriter struct {
	m      *Msg
	f      *flow
	single bool // the requester asked for one reply, not a stream
	sent   int
	closed bool
}

// Stream starts a streamed reply to m, a request made with
// [Conn.RequestStream] (or [Stream]). Send blocks while the requester has no
// credit left; it fails once the requester gave up. Close ends the stream.
func (m *Msg) Stream() (*StreamWriter, error) {
	if m.Reply == "" || m.conn == nil {
		return nil, ErrNoReply
	}
	f, err := m.conn.newFlow(m.Context(), 0)
	if err != nil {
		return nil, err
	}
	f.peer, f.flags = m.Reply, FlagReply|FlagMore
	f.credit = int(m.meta.credit)
	w := &StreamWriter{m: m, f: f}
	if m.meta.kind != kindStreamReq {
		w.single, f.credit = true, 1
	}
	return w, nil
}

// Context returns the request's context: it ends when the requester gives
// up or goes away.
func (w *StreamWriter) Context() context.Context { return w.m.Context() }

// Send sends one message of the stream.
func (w *StreamWriter) Send(data []byte) error { return w.SendMsg(&Msg{Data: data}) }

// SendMsg sends one message of the stream, with headers.
func (w *StreamWriter) SendMsg(r *Msg) error {
	if w.closed {
		return ErrClosed
	}
	if w.single && w.sent > 0 {
		return fmt.Errorf("ipc: %s: the requester asked for one reply, not a stream", w.m.Subject)
	}
	if r.Header != nil {
		if err := checkHeader(r.Header); err != nil {
			return err
		}
	}
	if err := w.m.conn.checkSize(r); err != nil {
		return err
	}
	if w.single {
		w.sent++
		return w.m.RespondMsg(r)
	}
	err := w.f.send(w.m.Context(), r)
	if errors.Is(err, errPeerCancelled) || w.m.Context().Err() != nil {
		return fmt.Errorf("%w: %w", ErrStreamAbandoned, err)
	}
	w.sent++
	return err
}

// ErrStreamAbandoned is returned by a StreamWriter whose requester gave up.
var ErrStreamAbandoned = errors.New("ipc: the requester abandoned the stream")

// Close ends the stream: normally when err is nil, else with err, which
// the requester gets as a *RemoteError. It is idempotent.
func (w *StreamWriter) Close(err error) error {
	if w.closed {
		return nil
	}
	w.closed = true
	defer w.f.finish(ErrClosed)
	if w.single {
		if w.sent == 0 {
			if err != nil {
				return w.m.RespondMsg(errorReply(err))
			}
			return w.m.RespondMsg(&Msg{})
		}
		return nil
	}
	defer w.m.conn.endServe(w.m)
	if w.m.Context().Err() != nil {
		return nil // nobody listens any more
	}
	if err != nil {
		r := errorReply(err)
		r.Subject = w.m.Reply
		return w.m.conn.publish(r, FlagReply)
	}
	return w.f.control(meta{kind: kindEnd}, FlagReply)
}

// Upload is a requester's end of an upload: a request whose body is sent
// as a stream of chunks, with flow control, before its answer comes back.
type Upload struct {
	c       *Conn
	subject string
	ctx     context.Context
	f       *flow
	done    bool
}

// Upload opens an upload to subject: m is the opening request (its Data
// is sent first, with its headers). The responder reads the chunks with
// [Msg.Upload]. Send the chunks with Send, then Close to get the answer.
func (c *Conn) Upload(ctx context.Context, m *Msg) (*Upload, error) {
	req := *m
	req.Reply = ""
	if err := c.checkPublish(&req); err != nil {
		return nil, &RequestError{Subject: m.Subject, Err: err}
	}
	f, err := c.newFlow(ctx, 1)
	if err != nil {
		return nil, &RequestError{Subject: m.Subject, Err: err}
	}
	req.Reply = f.self
	req.meta = meta{kind: kindUploadReq}
	if dl, ok := ctx.Deadline(); ok {
		req.meta.timeout = time.Until(dl)
	}
	if err := c.publish(&req, FlagRequest); err != nil {
		f.finish(err)
		return nil, &RequestError{Subject: m.Subject, Err: err}
	}
	return &Upload{c: c, subject: m.Subject, ctx: ctx, f: f}, nil
}

// Send sends one chunk, waiting for the responder's credit. It fails if
// the responder answered (or failed) without reading everything.
func (u *Upload) Send(data []byte) error {
	if u.done {
		return ErrClosed
	}
	r := &Msg{Data: data}
	if err := u.c.checkSize(r); err != nil {
		return err
	}
	if err := u.f.send(u.ctx, r); err != nil {
		u.fail()
		if ans := u.early(); ans != nil {
			return &RequestError{Subject: u.subject, Err: ans}
		}
		return &RequestError{Subject: u.subject, Err: err}
	}
	return nil
}

// early returns the error of an answer that came before the upload ended.
func (u *Upload) early() error {
	select {
	case m := <-u.f.in:
		if m.meta.status != 0 {
			return statusError(m)
		}
		return fmt.Errorf("ipc: the responder answered before the upload ended")
	default:
		return nil
	}
}

func (u *Upload) fail() {
	if !u.done {
		u.done = true
		u.c.abandon(u.f)
		u.f.finish(ErrClosed)
	}
}

// Abort gives up the upload; the responder's context is cancelled.
func (u *Upload) Abort() { u.fail() }

// Close ends the upload and waits for the responder's answer.
func (u *Upload) Close() (*Msg, error) {
	if u.done {
		return nil, ErrClosed
	}
	u.done = true
	defer u.f.finish(ErrClosed)
	if err := u.f.control(meta{kind: kindEnd}, 0); err != nil {
		return nil, &RequestError{Subject: u.subject, Err: err}
	}
	for {
		m, err := u.f.recv(u.ctx)
		if err != nil {
			if u.ctx.Err() != nil {
				u.c.abandon(u.f)
			}
			return nil, &RequestError{Subject: u.subject, Err: err}
		}
		if m.meta.kind == kindGo || m.meta.kind == kindChunk {
			continue
		}
		return m, nil
	}
}

// UploadReader is a responder's end of an upload (see [Msg.Upload]).
type UploadReader struct {
	m   *Msg
	f   *flow
	eof bool
}

// Upload starts reading the upload that m opened (a request made with
// [Conn.Upload]). Read the chunks with Next or Chunks, then answer with
// m.Respond. It fails with an error if m did not open an upload.
func (m *Msg) Upload() (*UploadReader, error) {
	if m.meta.kind != kindUploadReq || m.conn == nil {
		return nil, fmt.Errorf("ipc: %s: the message does not open an upload", m.Subject)
	}
	f, err := m.conn.newFlow(m.Context(), DefaultWindow)
	if err != nil {
		return nil, err
	}
	f.peer, f.flags = m.Reply, FlagReply|FlagMore
	if err := f.control(meta{kind: kindGo, credit: uint32(f.window)}, FlagReply|FlagMore); err != nil {
		f.finish(err)
		return nil, err
	}
	context.AfterFunc(m.Context(), func() { f.finish(ErrClosed) })
	return &UploadReader{m: m, f: f}, nil
}

// Next returns the next chunk, or io.EOF after the last one.
func (r *UploadReader) Next() (*Msg, error) {
	if r.eof {
		return nil, io.EOF
	}
	for {
		m, err := r.f.recv(r.m.Context())
		if err == errEnd {
			r.eof = true
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		if m.meta.kind == kindChunk {
			return m, nil
		}
	}
}

// Chunks yields the data of each chunk; a failure is yielded last.
func (r *UploadReader) Chunks() iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		for {
			m, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(m.Data, nil) {
				return
			}
		}
	}
}
