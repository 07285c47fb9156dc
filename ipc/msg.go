package ipc

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// Header holds a message's headers: each key maps to one or more values.
// Keys are case-sensitive, as in NATS. Keys starting with "Ipc-" are
// reserved for the library and are refused on publish.
type Header map[string][]string

// Get returns the first value of key, or "".
func (h Header) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value of key.
func (h Header) Values(key string) []string { return h[key] }

// Set replaces the values of key with value.
func (h Header) Set(key, value string) { h[key] = []string{value} }

// Add appends value to the values of key.
func (h Header) Add(key, value string) { h[key] = append(h[key], value) }

// Del removes key.
func (h Header) Del(key string) { delete(h, key) }

// Keys returns the keys in sorted order. With Get and Set it makes Header
// an observe.Carrier (and OpenTelemetry's TextMapCarrier).
func (h Header) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// reservedHeader is the prefix of the header keys the library uses.
const reservedHeader = "Ipc-"

// Msg is one message: a subject, an optional reply subject, headers and
// data. A Msg received by a handler belongs to the handler; the library
// does not touch it after delivery.
type Msg struct {
	Subject string
	Reply   string // where a response goes; empty when none is expected
	Header  Header
	Data    []byte
	// Expires, if set, is when the message stops being worth delivering:
	// a subscriber that gets it later puts it in the dead-letter queue
	// (ReasonExpired) instead of handling it.
	Expires time.Time

	conn  *Conn
	meta  meta
	serve *served // responder side: the request's context, while it is open
}

// NewMsg returns a message for subject with data.
func NewMsg(subject string, data []byte) *Msg { return &Msg{Subject: subject, Data: data} }

// Respond publishes data to the message's reply subject on the connection
// it arrived on. It fails with ErrNoReply if the message expects no reply.
func (m *Msg) Respond(data []byte) error { return m.RespondMsg(&Msg{Data: data}) }

// RespondMsg publishes r (its Subject is set to the reply subject) as the
// response to m. The first response ends the request: its context is
// released and a later cancellation by the requester is ignored.
func (m *Msg) RespondMsg(r *Msg) error {
	if m.Reply == "" || m.conn == nil {
		return ErrNoReply
	}
	if r.Header != nil {
		if err := checkHeader(r.Header); err != nil {
			return err
		}
	}
	r.Subject = m.Reply
	if err := m.conn.checkSize(r); err != nil {
		return err
	}
	err := m.conn.publish(r, FlagReply)
	m.conn.endServe(m)
	return err
}

// Context returns the context of a request: it is cancelled when the
// requester cancels the request or gives up (its deadline passed, it closed
// or its process died), when the connection closes, and it carries the
// requester's deadline. A message that expects no reply gets a context that
// ends only with the connection.
func (m *Msg) Context() context.Context {
	switch {
	case m.serve != nil:
		return m.serve
	case m.conn == nil:
		return context.Background()
	case m.Reply != "":
		return m.conn.track(m)
	}
	return m.conn.ctx
}

// Size is the message's size as the maximum payload counts it: data and
// headers.
func (m *Msg) Size() int { return len(m.Data) + headerSize(m.Header) }

func (m *Msg) String() string {
	if m.Reply != "" {
		return fmt.Sprintf("ipc.Msg(%s reply %s, %d bytes)", m.Subject, m.Reply, len(m.Data))
	}
	return fmt.Sprintf("ipc.Msg(%s, %d bytes)", m.Subject, len(m.Data))
}

// meta holds the reserved headers: what the library itself says in a
// message. It travels as Ipc-* headers.
type meta struct {
	timeout   time.Duration // the requester's time left when it sent the request
	status    int           // a status reply: see the status* constants
	desc      string        // the status' description
	kind      msgKind       // the role of the message in a stream or channel exchange
	seq       uint64        // stream chunk number, from 1
	ctl       string        // where to send credits and cancellation for a stream
	credit    uint32        // stream credit granted (chunks)
	keepalive time.Duration // the requester asks for liveness messages at this interval
	expires   int64         // Msg.Expires in Unix nanoseconds, while it travels
}

// msgKind says what a message is in a multi-message exchange.
type msgKind uint8

const (
	kindNone      msgKind = iota
	kindStreamReq         // a request that wants a stream back (credit = window)
	kindUploadReq         // a request that opens an upload
	kindChunk             // a chunk of a stream (seq)
	kindEnd               // the end of a stream
	kindCredit            // more credit for the sender of a stream
	kindCancel            // the receiver of a stream gave up
	kindAlive             // a responder is still working on a request
	kindGo                // an upload's responder is ready: ctl, credit
	kindBig               // a message too large for one frame follows as a stream
	kindLast
)

var kindNames = [...]string{"", "stream", "upload", "chunk", "end", "credit", "cancel", "alive", "go", "big"}

// Reserved header keys.
const (
	hdrTimeout   = "Ipc-Timeout"
	hdrStatus    = "Ipc-Status"
	hdrKind      = "Ipc-Kind"
	hdrSeq       = "Ipc-Seq"
	hdrCtl       = "Ipc-Ctl"
	hdrCredit    = "Ipc-Credit"
	hdrKeepalive = "Ipc-Keepalive"
	hdrExpires   = "Ipc-Expires"
)

// Status codes of replies the library makes, modelled on HTTP as NATS does.
const (
	statusFailed      = 500 // the handler failed; the data is the error payload
	statusNoResponder = 503 // nobody subscribes to the subject
	statusGone        = 410 // the responder went away before answering
	statusDenied      = 403 // the server's permissions refused the request
	statusTooLarge    = 413 // the request is larger than the server accepts
	statusRateLimited = 429 // the requester's rate limit is exceeded
	statusTimeout     = 408 // the responder saw the deadline pass
	statusShutdown    = 502 // the server is shutting down
)

// Wire layout of a message (the payload of PUB and MSG frames):
//
//	subject_len u16 | subject | reply_len u16 | reply | header_len u32 | header block | data
//
// The header block is a sequence of entries, one per value:
//
//	key_len u16 | key | value_len u32 | value
const msgFixed = 2 + 2 + 4

// appendMsg appends the wire encoding of m to dst.
func appendMsg(dst []byte, m *Msg) []byte { return append(appendMsgHead(dst, m), m.Data...) }

// appendMsgHead appends the wire encoding of m without its data.
func appendMsgHead(dst []byte, m *Msg) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(m.Subject)))
	dst = append(dst, m.Subject...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(m.Reply)))
	dst = append(dst, m.Reply...)
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	mt := m.wireMeta()
	dst = mt.appendTo(dst)
	for k, vs := range m.Header {
		for _, v := range vs {
			dst = appendHeader(dst, k, v)
		}
	}
	binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	return dst
}

// encodedLen is len(appendMsg(nil, m)).
func encodedLen(m *Msg) int {
	mt := m.wireMeta()
	return msgFixed + len(m.Subject) + len(m.Reply) + mt.size() + headerSize(m.Header) + len(m.Data)
}

// wireMeta is m's reserved headers as they travel.
func (m *Msg) wireMeta() meta {
	mt := m.meta
	if !m.Expires.IsZero() {
		mt.expires = m.Expires.UnixNano()
	}
	return mt
}

// takeExpires moves a received expiry into Msg.Expires.
func (m *Msg) takeExpires() {
	if m.meta.expires != 0 {
		m.Expires = time.Unix(0, m.meta.expires)
		m.meta.expires = 0
	}
}

func appendHeader(dst []byte, k, v string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(k)))
	dst = append(dst, k...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
	return append(dst, v...)
}

// headerSize is the encoded size of h's entries.
func headerSize(h Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += 6 + len(k) + len(v)
		}
	}
	return n
}

func (mt *meta) appendTo(dst []byte) []byte {
	var num [20]byte
	if mt.timeout != 0 {
		dst = appendHeader(dst, hdrTimeout, bstr(strconv.AppendInt(num[:0], int64(mt.timeout), 10)))
	}
	if mt.status != 0 {
		v := strconv.Itoa(mt.status)
		if mt.desc != "" {
			v += " " + mt.desc
		}
		dst = appendHeader(dst, hdrStatus, v)
	}
	if mt.kind != kindNone {
		dst = appendHeader(dst, hdrKind, kindNames[mt.kind])
	}
	if mt.seq != 0 {
		dst = appendHeader(dst, hdrSeq, bstr(strconv.AppendUint(num[:0], mt.seq, 10)))
	}
	if mt.ctl != "" {
		dst = appendHeader(dst, hdrCtl, mt.ctl)
	}
	if mt.credit != 0 {
		dst = appendHeader(dst, hdrCredit, bstr(strconv.AppendUint(num[:0], uint64(mt.credit), 10)))
	}
	if mt.keepalive != 0 {
		dst = appendHeader(dst, hdrKeepalive, bstr(strconv.AppendInt(num[:0], int64(mt.keepalive), 10)))
	}
	if mt.expires != 0 {
		dst = appendHeader(dst, hdrExpires, bstr(strconv.AppendInt(num[:0], mt.expires, 10)))
	}
	return dst
}

func (mt *meta) size() int {
	if *mt == (meta{}) {
		return 0
	}
	var b [256]byte
	return len(mt.appendTo(b[:0]))
}

// header returns mt as Ipc-* header entries added to h, for backends
// that carry headers as a map.
func (mt *meta) header(h Header) Header {
	if *mt == (meta{}) {
		return h
	}
	if h == nil {
		h = make(Header, 2)
	}
	if mt.timeout != 0 {
		h[hdrTimeout] = []string{strconv.FormatInt(int64(mt.timeout), 10)}
	}
	if mt.status != 0 {
		v := strconv.Itoa(mt.status)
		if mt.desc != "" {
			v += " " + mt.desc
		}
		h[hdrStatus] = []string{v}
	}
	if mt.kind != kindNone {
		h[hdrKind] = []string{kindNames[mt.kind]}
	}
	if mt.seq != 0 {
		h[hdrSeq] = []string{strconv.FormatUint(mt.seq, 10)}
	}
	if mt.ctl != "" {
		h[hdrCtl] = []string{mt.ctl}
	}
	if mt.credit != 0 {
		h[hdrCredit] = []string{strconv.FormatUint(uint64(mt.credit), 10)}
	}
	if mt.keepalive != 0 {
		h[hdrKeepalive] = []string{strconv.FormatInt(int64(mt.keepalive), 10)}
	}
	if mt.expires != 0 {
		h[hdrExpires] = []string{strconv.FormatInt(mt.expires, 10)}
	}
	return h
}

// set records one reserved header; unknown Ipc-* keys are ignored, so a
// newer peer can add some. k and v may alias a frame buffer: what is kept
// is copied.
func (mt *meta) set(k, v string) error {
	var err error
	switch k {
	case hdrTimeout:
		var n int64
		n, err = strconv.ParseInt(v, 10, 64)
		mt.timeout = time.Duration(n)
	case hdrStatus:
		code, desc, _ := strings.Cut(v, " ")
		mt.status, err = strconv.Atoi(code)
		mt.desc = strings.Clone(desc)
	case hdrKind:
		for i, name := range kindNames[1:] {
			if v == name {
				mt.kind = msgKind(i + 1)
			}
		}
	case hdrSeq:
		mt.seq, err = strconv.ParseUint(v, 10, 64)
	case hdrCtl:
		mt.ctl = strings.Clone(v)
	case hdrCredit:
		var n uint64
		n, err = strconv.ParseUint(v, 10, 32)
		mt.credit = uint32(n)
	case hdrKeepalive:
		var n int64
		n, err = strconv.ParseInt(v, 10, 64)
		mt.keepalive = time.Duration(n)
	case hdrExpires:
		mt.expires, err = strconv.ParseInt(v, 10, 64)
	}
	if err != nil {
		return fmt.Errorf("%w: header %s: %q", ErrProtocol, k, v)
	}
	return nil
}

// wireMsg is a decoded message whose fields alias the frame payload.
type wireMsg struct {
	subject, reply, header, data []byte
}

// parseMsg splits a message payload, checking every length against what is
// there. It allocates nothing.
func parseMsg(p []byte) (wireMsg, error) {
	var w wireMsg
	if len(p) < 2 {
		return w, fmt.Errorf("%w: message of %d bytes", ErrProtocol, len(p))
	}
	n := int(binary.BigEndian.Uint16(p))
	if n > MaxSubjectLen || len(p) < 2+n+2 {
		return w, fmt.Errorf("%w: subject length %d", ErrProtocol, n)
	}
	w.subject, p = p[2:2+n], p[2+n:]
	n = int(binary.BigEndian.Uint16(p))
	if n > MaxSubjectLen || len(p) < 2+n+4 {
		return w, fmt.Errorf("%w: reply length %d", ErrProtocol, n)
	}
	w.reply, p = p[2:2+n], p[2+n:]
	hl := binary.BigEndian.Uint32(p)
	if uint64(hl) > uint64(len(p)-4) {
		return w, fmt.Errorf("%w: header length %d", ErrProtocol, hl)
	}
	w.header, w.data = p[4:4+hl], p[4+hl:]
	return w, nil
}

// nextHeader splits the first entry off a header block.
func nextHeader(b []byte) (k, v, rest []byte, err error) {
	if len(b) < 2 {
		return nil, nil, nil, fmt.Errorf("%w: truncated header", ErrProtocol)
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n+4 {
		return nil, nil, nil, fmt.Errorf("%w: truncated header key", ErrProtocol)
	}
	k, b = b[2:2+n], b[2+n:]
	vl := binary.BigEndian.Uint32(b)
	if uint64(vl) > uint64(len(b)-4) {
		return nil, nil, nil, fmt.Errorf("%w: truncated header value", ErrProtocol)
	}
	return k, b[4 : 4+vl], b[4+vl:], nil
}

// checkHeaderBlock checks a header block as decodeMsg will read it: every
// entry whole and every reserved entry's value valid. It allocates nothing.
func checkHeaderBlock(b []byte) error {
	var mt meta // scratch: set may keep views of k and v in it
	for len(b) > 0 {
		k, v, rest, err := nextHeader(b)
		if err != nil {
			return err
		}
		if len(k) > len(reservedHeader) && string(k[:len(reservedHeader)]) == reservedHeader {
			if err := mt.set(bstr(k), bstr(v)); err != nil {
				return err
			}
		}
		b = rest
	}
	return nil
}

// smallMsg is the largest subject, reply and data together that
// decodeMsg stores in the Msg's own allocation.
const smallMsg = 96

type smallMsgAlloc struct {
	m Msg
	b [smallMsg]byte
}

// decodeMsg builds a Msg from a payload, with one copy of the payload that
// the subject, reply and data share.
func decodeMsg(p []byte) (*Msg, error) {
	w, err := parseMsg(p)
	if err != nil {
		return nil, err
	}
	size := len(w.subject) + len(w.reply) + len(w.data)
	var m *Msg
	var own []byte
	if size <= smallMsg { // one allocation for the message and its bytes
		sm := new(smallMsgAlloc)
		m, own = &sm.m, sm.b[:size]
	} else {
		m, own = new(Msg), make([]byte, size)
	}
	n := copy(own, w.subject)
	n += copy(own[n:], w.reply)
	copy(own[n:], w.data)
	m.Subject = bstr(own[:len(w.subject)])
	m.Reply = bstr(own[len(w.subject):n])
	m.Data = own[n:size:size]
	if len(w.header) > 0 {
		if err := m.setHeaders(w.header); err != nil {
			return nil, err
		}
		m.takeExpires()
	}
	return m, nil
}

// setHeaders decodes a header block into m.Header and m.meta.
func (m *Msg) setHeaders(b []byte) error {
	for len(b) > 0 {
		k, v, rest, err := nextHeader(b)
		if err != nil {
			return err
		}
		b = rest
		if len(k) > len(reservedHeader) && string(k[:len(reservedHeader)]) == reservedHeader {
			if err := m.meta.set(bstr(k), bstr(v)); err != nil {
				return err
			}
			continue
		}
		if m.Header == nil {
			m.Header = make(Header, 2)
		}
		m.Header.Add(string(k), string(v))
	}
	return nil
}

// bstr views b as a string without copying; b must never change afterwards.
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// checkHeader refuses reserved and oversized header entries.
func checkHeader(h Header) error {
	for k, vs := range h {
		if strings.HasPrefix(k, reservedHeader) {
			return fmt.Errorf("%w: header key %q: the %s prefix is reserved", ErrBadHeader, k, reservedHeader)
		}
		if k == "" || len(k) > 0xFFFF {
			return fmt.Errorf("%w: header key of %d bytes", ErrBadHeader, len(k))
		}
		for _, c := range []byte(k) {
			if c <= ' ' || c == ':' || c >= 0x7f {
				return fmt.Errorf("%w: header key %q: printable ASCII without ':' or spaces only", ErrBadHeader, k)
			}
		}
		if len(vs) == 0 {
			return fmt.Errorf("%w: header key %q has no value", ErrBadHeader, k)
		}
	}
	return nil
}

// WireHeader returns m's headers as they travel: its Header entries plus
// the library's reserved Ipc-* entries. It is for Transport
// implementations that carry headers as a map (such as NATS); m is not
// changed.
func WireHeader(m *Msg) Header {
	mt := m.wireMeta()
	if mt == (meta{}) {
		return m.Header
	}
	h := make(Header, len(m.Header)+4)
	for k, v := range m.Header {
		h[k] = v
	}
	return mt.header(h)
}

// SetWireHeader sets m's Header and reserved fields from headers as they
// travelled, the inverse of [WireHeader]. It is for Transport
// implementations.
func SetWireHeader(m *Msg, h Header) error {
	m.Header = nil
	for k, vs := range h {
		if strings.HasPrefix(k, reservedHeader) {
			for _, v := range vs {
				if err := m.meta.set(k, v); err != nil {
					return err
				}
			}
			continue
		}
		if m.Header == nil {
			m.Header = make(Header, len(h))
		}
		m.Header[k] = vs
	}
	m.takeExpires()
	return nil
}
