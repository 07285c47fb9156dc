package ipc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime/debug"

	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
)

// DefaultMaxBig bounds a request or response that travels as a stream
// because it is larger than the maximum payload ([Call], [Handle]).
const DefaultMaxBig = 256 << 20

// HandleOption configures Handle, HandleStream and HandleUpload.
type HandleOption interface{ applyHandle(*handleOpts) }

type handleOpts struct {
	queue         string
	codec         codec.Codec
	maxConcurrent int
	maxBig        int
}

type handleOpt func(*handleOpts)

func (f handleOpt) applyHandle(o *handleOpts) { f(o) }

// Queue makes the handler a member of queue group name: each request goes
// to one member, so more handler processes add capacity.
func Queue(name string) HandleOption { return handleOpt(func(o *handleOpts) { o.queue = name }) }

// MaxConcurrent bounds the requests a handler serves at once (default
// DefaultMaxConcurrent); more wait in the subscription's queue.
func MaxConcurrent(n int) HandleOption {
	return handleOpt(func(o *handleOpts) { o.maxConcurrent = n })
}

// MaxBig bounds a request or response larger than the maximum payload,
// which travels as a stream (default DefaultMaxBig).
func MaxBig(n int) HandleOption { return handleOpt(func(o *handleOpts) { o.maxBig = n }) }

// CodecOption chooses how typed helpers encode values: codec.Msgpack (the
// default), codec.JSON, or codec.Raw for []byte values sent as they are.
type CodecOption struct{ c codec.Codec }

// WithCodec returns the option for cd. It fits Handle, Call, Stream,
// channels and topics.
func WithCodec(cd codec.Codec) CodecOption { return CodecOption{cd} }

func (o CodecOption) applyHandle(h *handleOpts)    { h.codec = o.c }
func (o CodecOption) applyRequest(r *requestOpts)  { r.codec = o.c }
func (o CodecOption) applyChannel(ch *channelOpts) { ch.codec = o.c }
func (o CodecOption) applyTopic(t *topicOpts)      { t.codec = o.c }

func handleOptions(opts []HandleOption) handleOpts {
	o := handleOpts{codec: codec.Msgpack, maxConcurrent: DefaultMaxConcurrent, maxBig: DefaultMaxBig}
	for _, opt := range opts {
		opt.applyHandle(&o)
	}
	return o
}

// Handle serves requests to subject (wildcards allowed) with fn: each
// request's data is decoded into a Req, fn runs with the request's
// context — cancelled when the requester gives up or goes away — and its
// result is encoded back. An error fn returns reaches the caller as a
// *RemoteError (its Code, Name and message kept; see rpc.RemoteError); a
// panic too, with the stack. Requests are served concurrently, up to
// MaxConcurrent at once. Requests and responses larger than the maximum
// payload travel as streams, transparently for [Call].
func Handle[Req, Resp any](c *Conn, subject string, fn func(ctx context.Context, req Req) (Resp, error), opts ...HandleOption) (*Subscription, error) {
	o := handleOptions(opts)
	if err := checkSubject(subject, true); err != nil {
		return nil, err
	}
	h := func(m *Msg) {
		ctx := m.Context()
		resp, err := serveOne(ctx, m, o, fn)
		if m.Reply == "" {
			if err != nil {
				c.asyncError(fmt.Errorf("ipc: handler for %s: %w", m.Subject, err))
			}
			c.endServe(m)
			return
		}
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				c.endServe(m) // the requester gave up: nobody listens
				return
			}
			_ = m.RespondMsg(errorReply(err))
			return
		}
		data, err := o.codec.Append(nil, resp)
		if err != nil {
			_ = m.RespondMsg(errorReply(&RemoteError{Name: "EncodeError", Code: rpc.CodeBadResponse,
				Message: fmt.Sprintf("%s: cannot encode the result %T: %v", m.Subject, resp, err)}))
			return
		}
		if err := respondBig(m, data, o.maxBig); err != nil {
			c.asyncError(fmt.Errorf("ipc: respond to %s: %w", m.Subject, err))
		}
	}
	return c.subscribeLimit(subject, o.queue, h, modeConcurrent, max(o.maxConcurrent, 1))
}

// serveOne decodes a request and runs fn, turning a panic into an error.
func serveOne[Req, Resp any](ctx context.Context, m *Msg, o handleOpts, fn func(context.Context, Req) (Resp, error)) (resp Resp, err error) {
	data, err := requestBody(m, o.maxBig)
	if err != nil {
		return resp, err
	}
	var req Req
	if err := decodeInto(o.codec, data, &req); err != nil {
		return resp, &RemoteError{Name: "DecodeError", Code: rpc.CodeBadRequest,
			Message: fmt.Sprintf("%s: cannot decode the request into %T: %v", m.Subject, req, err)}
	}
	defer func() {
		if p := recover(); p != nil {
			err = &RemoteError{Name: "panic", Message: fmt.Sprint(p), Stack: string(debug.Stack())}
		}
	}()
	return fn(ctx, req)
}

// decodeInto decodes data into v; raw []byte data is taken as it is.
func decodeInto(cd codec.Codec, data []byte, v any) error {
	if cd == codec.Raw {
		if p, ok := v.(*[]byte); ok {
			*p = data
			return nil
		}
	}
	return cd.Unmarshal(data, v)
}

// requestBody returns a request's data, reading it whole if it came as an
// upload (a request larger than the maximum payload).
func requestBody(m *Msg, limit int) ([]byte, error) {
	if m.meta.kind != kindUploadReq {
		return m.Data, nil
	}
	r, err := m.Upload()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Write(m.Data)
	for data, err := range r.Chunks() {
		if err != nil {
			return nil, err
		}
		if buf.Len()+len(data) > limit {
			return nil, &RemoteError{Name: "TooLarge", Code: "too_large",
				Message: fmt.Sprintf("%s: the request is larger than %d bytes", m.Subject, limit)}
		}
		buf.Write(data)
	}
	return buf.Bytes(), nil
}

// respondBig answers m with data, as a stream of chunks when it is larger
// than the maximum payload: the first message says so (kindBig), the
// requester grants credit, then the chunks follow.
func respondBig(m *Msg, data []byte, limit int) error {
	c := m.conn
	max := c.MaxPayload()
	if max <= 0 || len(data) <= max {
		return m.RespondMsg(&Msg{Data: data})
	}
	if len(data) > limit {
		return m.RespondMsg(errorReply(&RemoteError{Name: "TooLarge", Code: "too_large",
			Message: fmt.Sprintf("%s: the response of %d bytes is larger than %d", m.Subject, len(data), limit)}))
	}
	defer c.endServe(m)
	f, err := c.newFlow(m.Context(), 1)
	if err != nil {
		return err
	}
	defer f.finish(ErrClosed)
	f.flags = FlagReply | FlagMore
	if err := c.publish(&Msg{Subject: m.Reply, meta: meta{kind: kindBig, ctl: f.self}}, FlagReply|FlagMore); err != nil {
		return err
	}
	f.mu.Lock()
	f.sentCtl = true
	f.mu.Unlock()
	for off := 0; off < len(data); off += max {
		if err := f.send(m.Context(), &Msg{Data: data[off:min(off+max, len(data))]}); err != nil {
			return err
		}
	}
	return f.control(meta{kind: kindEnd}, FlagReply)
}

// Call sends req, encoded, to subject and decodes the answer into a Resp.
// It takes the request options (Idempotent, Keepalive, WithHeader,
// WithCodec). A request or answer larger than the maximum payload travels
// as a stream; the other side must be a [Handle].
func Call[Resp any](ctx context.Context, c *Conn, subject string, req any, opts ...RequestOption) (Resp, error) {
	var zero Resp
	o := requestOptions(opts)
	data, err := o.codec.Append(nil, req)
	if err != nil {
		return zero, &RequestError{Subject: subject, Err: fmt.Errorf("encode the request %T: %w", req, err)}
	}
	m := &Msg{Subject: subject, Header: o.header, Data: data}
	var resp *Msg
	if max := c.MaxPayload(); max > 0 && m.Size() > max {
		resp, err = c.uploadWhole(ctx, m, max)
	} else {
		resp, err = c.RequestMsg(ctx, m, opts...)
	}
	if err == nil && resp.meta.kind == kindBig {
		resp, err = c.readBig(ctx, subject, resp)
	}
	if err != nil {
		return zero, err
	}
	var out Resp
	if err := decodeInto(o.codec, resp.Data, &out); err != nil {
		return zero, &RequestError{Subject: subject, Err: fmt.Errorf("decode the response into %T: %w", out, err)}
	}
	return out, nil
}

func requestOptions(opts []RequestOption) requestOpts {
	o := requestOpts{codec: codec.Msgpack}
	for _, opt := range opts {
		opt.applyRequest(&o)
	}
	return o
}

// uploadWhole sends a request larger than the maximum payload as an upload.
func (c *Conn) uploadWhole(ctx context.Context, m *Msg, max int) (*Msg, error) {
	if _, ok := ctx.Deadline(); !ok && c.opts.CallTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.CallTimeout)
		defer cancel()
	}
	data := m.Data
	up, err := c.Upload(ctx, &Msg{Subject: m.Subject, Header: m.Header})
	if err != nil {
		return nil, err
	}
	for off := 0; off < len(data); off += max {
		if err := up.Send(data[off:min(off+max, len(data))]); err != nil {
			return nil, err
		}
	}
	resp, err := up.Close()
	if err != nil {
		return nil, err
	}
	if resp.meta.status != 0 {
		return nil, &RequestError{Subject: m.Subject, Err: statusError(resp)}
	}
	return resp, nil
}

// readBig receives an answer that comes as a stream because it is larger
// than the maximum payload.
func (c *Conn) readBig(ctx context.Context, subject string, first *Msg) (*Msg, error) {
	f, err := c.newFlow(ctx, DefaultWindow)
	if err != nil {
		return nil, &RequestError{Subject: subject, Err: err}
	}
	defer f.finish(ErrClosed)
	f.peer = first.meta.ctl
	if err := f.control(meta{kind: kindGo, credit: uint32(f.window)}, 0); err != nil {
		return nil, &RequestError{Subject: subject, Err: err}
	}
	var buf bytes.Buffer
	for {
		m, err := f.recv(ctx)
		if err == errEnd {
			return &Msg{Subject: first.Subject, Header: first.Header, Data: buf.Bytes()}, nil
		}
		if err != nil {
			if ctx.Err() != nil {
				c.abandon(f)
			}
			return nil, &RequestError{Subject: subject, Err: err}
		}
		if m.meta.kind == kindChunk {
			buf.Write(m.Data)
		}
	}
}

// Stream sends req to subject, a [HandleStream] responder, and yields the
// values of its streamed answer, decoded as T. Breaking out of the loop
// cancels the responder. A failure is yielded last.
func Stream[T any](ctx context.Context, c *Conn, subject string, req any, opts ...RequestOption) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		o := requestOptions(opts)
		data, err := o.codec.Append(nil, req)
		if err != nil {
			yield(zero, &RequestError{Subject: subject, Err: fmt.Errorf("encode the request %T: %w", req, err)})
			return
		}
		for m, err := range c.RequestStream(ctx, &Msg{Subject: subject, Header: o.header, Data: data}, opts...) {
			if err != nil {
				yield(zero, err)
				return
			}
			var v T
			if err := decodeInto(o.codec, m.Data, &v); err != nil {
				yield(zero, &RequestError{Subject: subject, Err: fmt.Errorf("decode a stream value into %T: %w", v, err)})
				return
			}
			if !yield(v, nil) {
				return
			}
		}
	}
}

// HandleStream serves stream requests to subject: fn's sequence is sent
// to the requester value by value, with flow control; an error it yields
// ends the stream with that error. The sequence's context ends when the
// requester stops reading or goes away.
func HandleStream[Req, T any](c *Conn, subject string, fn func(ctx context.Context, req Req) iter.Seq2[T, error], opts ...HandleOption) (*Subscription, error) {
	o := handleOptions(opts)
	h := func(m *Msg) {
		w, err := m.Stream()
		if err != nil {
			c.asyncError(fmt.Errorf("ipc: stream handler for %s: %w", m.Subject, err))
			c.endServe(m)
			return
		}
		w.Close(streamAll(m, w, o, fn))
	}
	return c.subscribeLimit(subject, o.queue, h, modeConcurrent, max(o.maxConcurrent, 1))
}

func streamAll[Req, T any](m *Msg, w *StreamWriter, o handleOpts, fn func(context.Context, Req) iter.Seq2[T, error]) (err error) {
	var req Req
	if err := decodeInto(o.codec, m.Data, &req); err != nil {
		return &RemoteError{Name: "DecodeError", Code: rpc.CodeBadRequest,
			Message: fmt.Sprintf("%s: cannot decode the request into %T: %v", m.Subject, req, err)}
	}
	defer func() {
		if p := recover(); p != nil {
			err = &RemoteError{Name: "panic", Message: fmt.Sprint(p), Stack: string(debug.Stack())}
		}
	}()
	for v, err := range fn(w.Context(), req) {
		if err != nil {
			return err
		}
		data, err := o.codec.Append(nil, v)
		if err != nil {
			return &RemoteError{Name: "EncodeError", Code: rpc.CodeBadResponse, Message: fmt.Sprintf("%s: cannot encode %T: %v", m.Subject, v, err)}
		}
		if err := w.Send(data); err != nil {
			if errors.Is(err, ErrStreamAbandoned) {
				return nil
			}
			return err
		}
	}
	return nil
}

// HandleUpload serves uploads to subject: fn reads the opening request
// and the chunks, and its result is the answer.
func HandleUpload[Resp any](c *Conn, subject string, fn func(ctx context.Context, open *Msg, chunks iter.Seq2[[]byte, error]) (Resp, error), opts ...HandleOption) (*Subscription, error) {
	o := handleOptions(opts)
	h := func(m *Msg) {
		r, err := m.Upload()
		if err != nil {
			_ = m.RespondMsg(errorReply(err))
			return
		}
		resp, err := func() (resp Resp, err error) {
			defer func() {
				if p := recover(); p != nil {
					err = &RemoteError{Name: "panic", Message: fmt.Sprint(p), Stack: string(debug.Stack())}
				}
			}()
			return fn(m.Context(), m, r.Chunks())
		}()
		if err != nil {
			_ = m.RespondMsg(errorReply(err))
			return
		}
		data, err := o.codec.Append(nil, resp)
		if err != nil {
			_ = m.RespondMsg(errorReply(fmt.Errorf("cannot encode the result %T: %w", resp, err)))
			return
		}
		_ = m.RespondMsg(&Msg{Data: data})
	}
	return c.subscribeLimit(subject, o.queue, h, modeConcurrent, max(o.maxConcurrent, 1))
}

// Decode decodes a message's data into a T with cd (nil: msgpack).
func Decode[T any](m *Msg, cd codec.Codec) (T, error) {
	var v T
	if cd == nil {
		cd = codec.Msgpack
	}
	err := decodeInto(cd, m.Data, &v)
	return v, err
}
