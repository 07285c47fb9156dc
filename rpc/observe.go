package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/procxy/procxy/observe"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/rpc/wire"
)

// Observing calls (Options.Observer). Nothing here runs without an
// Observer: the unobserved paths of Call, OpenStream, Send and serve only
// test for a nil pointer.

// ErrMetadata is wrapped by the error that ends a connection on which a
// request's metadata was malformed (docs/PROTOCOL.md, "Request metadata").
var ErrMetadata = errors.New("rpc: malformed request metadata")

// Request metadata limits.
const (
	// MaxMetadata bounds the metadata of one request: the entries after
	// the 2-byte length.
	MaxMetadata = 4096
	// maxMetaValue is the largest value an entry can hold (u16 length).
	maxMetaValue = 1<<16 - 1
)

// appendMeta appends the metadata prefix of a request: a u16 BE length,
// then for each entry a u8 key length, the key, a u16 BE value length and
// the value. Entries that do not fit MaxMetadata are left out.
func appendMeta(dst []byte, h observe.Header) []byte {
	start := len(dst)
	dst = append(dst, 0, 0)
	for _, k := range h.Keys() {
		v := h[k]
		if len(k) == 0 || len(k) > 255 || len(v) > maxMetaValue || len(dst)-start-2+3+len(k)+len(v) > MaxMetadata {
			continue
		}
		dst = append(dst, byte(len(k)))
		dst = append(dst, k...)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(v)))
		dst = append(dst, v...)
	}
	binary.BigEndian.PutUint16(dst[start:], uint16(len(dst)-start-2))
	return dst
}

// cutMeta splits a request payload that carries metadata into the
// metadata (nil when want is false: it is checked and skipped) and the
// request's own payload.
func cutMeta(p []byte, want bool) (observe.Header, []byte, error) {
	if len(p) < 2 {
		return nil, nil, fmt.Errorf("%w: %d bytes, no room for its length", ErrMetadata, len(p))
	}
	n := int(binary.BigEndian.Uint16(p))
	if n > MaxMetadata || n > len(p)-2 {
		return nil, nil, fmt.Errorf("%w: %d bytes of metadata in a %d-byte payload (at most %d)", ErrMetadata, n, len(p), MaxMetadata)
	}
	b, rest := p[2:2+n], p[2+n:]
	var h observe.Header
	if want {
		h = make(observe.Header)
	}
	for len(b) > 0 {
		kl := int(b[0])
		if kl == 0 || len(b) < 1+kl+2 {
			return nil, nil, fmt.Errorf("%w: truncated key", ErrMetadata)
		}
		k := b[1 : 1+kl]
		vl := int(binary.BigEndian.Uint16(b[1+kl:]))
		b = b[1+kl+2:]
		if len(b) < vl {
			return nil, nil, fmt.Errorf("%w: value of %q is %d bytes, %d left", ErrMetadata, k, vl, len(b))
		}
		if want {
			h[string(k)] = string(b[:vl])
		}
		b = b[vl:]
	}
	return h, rest, nil
}

// observed is a call being observed on the client side.
type observed struct {
	ctx  context.Context // what CallStart returned
	call observe.Call
	meta []byte // the request's metadata prefix; nil sends none
}

// startCall starts observing an outgoing call of m.
func (c *Conn) startCall(ctx context.Context, m Method, kind observe.Kind) *observed {
	o := &observed{call: observe.Call{
		Side: observe.Client, Kind: kind, Service: c.opts.Service,
		Method: m.Name, MethodID: m.ID, Start: time.Now(),
	}}
	if o.call.Method == "" {
		o.call.Method = "#" + strconv.Itoa(int(m.ID))
	}
	var h observe.Header
	if c.opts.Metadata {
		h = make(observe.Header)
		o.call.Carrier = h
	}
	o.ctx = c.opts.Observer.CallStart(ctx, &o.call)
	if len(h) > 0 {
		o.meta = appendMeta(nil, h)
	}
	return o
}

// end reports the outcome of an observed call.
func (c *Conn) endCall(o *observed, out, in int, err error) {
	o.call.Duration = time.Since(o.call.Start)
	o.call.BytesOut, o.call.BytesIn, o.call.Err = int64(out), int64(in), err
	c.opts.Observer.CallEnd(o.ctx, &o.call)
}

// sendMeta is sendVec for a request with a metadata prefix (FlagMeta).
func (c *Conn) sendMeta(method uint16, id uint32, meta []byte, vec *codec.Vec) error {
	parts := append([][]byte{meta}, vec.Parts()...)
	h := wire.Header{Method: method, Flags: wire.FlagMeta | c.dir, ID: id}
	if c.lane.Load() != nil {
		if ok, err := c.sendLane(h, parts, len(meta)+vec.Len()); ok {
			if err != nil {
				c.fail(err)
				return c.Err()
			}
			return nil
		}
	}
	if err := c.w.WriteFrameVec(h, parts); err != nil {
		c.fail(err)
		return c.Err()
	}
	return nil
}

// sendRequest sends a request, with o's metadata when there is some.
func (c *Conn) sendRequest(method uint16, id uint32, vec *codec.Vec, o *observed) error {
	if o != nil && o.meta != nil {
		return c.sendMeta(method, id, o.meta, vec)
	}
	return c.sendVec(method, 0, id, vec, false)
}

// callObserved is Call with an Observer.
func (c *Conn) callObserved(ctx context.Context, m Method, in, out any) error {
	o := c.startCall(ctx, m, observe.Unary)
	req, _ := m.codecs(c)
	vec, pooled, err := encode(req, in)
	if err != nil {
		c.endCall(o, 0, 0, err)
		return err
	}
	n := vec.Len()
	var got int
	err = c.call(ctx, m, vec, pooled, out, o, &got)
	c.endCall(o, n, got, err)
	return err
}

// sendObserved is Send with an Observer.
func (c *Conn) sendObserved(ctx context.Context, m Method, in any) error {
	o := c.startCall(ctx, m, observe.OneWay)
	req, _ := m.codecs(c)
	vec, pooled, err := encode(req, in)
	if err != nil {
		c.endCall(o, 0, 0, err)
		return err
	}
	n := vec.Len()
	err = c.sendRequest(m.ID, 0, vec, o)
	if pooled {
		putVec(vec)
	}
	c.endCall(o, n, 0, err)
	return err
}

// served is a request being observed on the server side.
type served struct {
	ctx  context.Context
	call observe.Call
}

// startServed starts observing r; the handler runs with the returned
// context.
func (c *Conn) startServed(r *request) *served {
	s := &served{call: observe.Call{
		Side: observe.Server, Kind: observe.Unary, Service: c.opts.Service,
		Method: r.h.name, MethodID: r.method, Start: time.Now(), BytesIn: int64(r.size),
	}}
	switch {
	case r.id == 0:
		s.call.Kind = observe.OneWay
	case r.h.kind == KindStream:
		s.call.Kind = observe.Stream
	}
	if s.call.Method == "" {
		s.call.Method = "#" + strconv.Itoa(int(r.method))
	}
	if r.meta != nil {
		s.call.Carrier = r.meta
	}
	s.ctx = c.opts.Observer.CallStart(r, &s.call)
	return s
}

func (c *Conn) endServed(s *served, out int64, err error) {
	s.call.Duration = time.Since(s.call.Start)
	s.call.BytesOut, s.call.Err = out, err
	c.opts.Observer.CallEnd(s.ctx, &s.call)
}

// streamObserved is the observation of a stream call on the client side.
type streamObserved struct {
	o    *observed
	out  int
	in   atomic.Int64 // bytes of the chunks received so far
	done bool         // guarded by Stream.mu
}

// endObserved reports the end of an observed stream once.
func (s *Stream) endObserved(err error) {
	so := s.obs
	if so == nil {
		return
	}
	s.mu.Lock()
	first := !so.done
	so.done = true
	s.mu.Unlock()
	if first {
		s.conn.endCall(so.o, so.out, int(so.in.Load()), err)
	}
}
