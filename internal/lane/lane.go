// Package lane is procxy's shared-memory lane: large payloads between two
// procxy processes on one host travel through memory both map, and only a
// 16-byte reference travels through their socket.
//
// The parent of a connection creates two regions (sealed memfds of a fixed
// size): one it writes payloads into, one its child writes into. It passes
// both to the child over the Unix socket (SCM_RIGHTS) with an offer; the
// child checks their seals and sizes, maps them, and accepts or refuses.
// A sender allocates room in its own region, copies a payload there and
// sends a reference (offset, length, sequence number); the receiver checks
// the reference against the peer's region — in bounds, next in sequence —
// copies the payload out, and releases it, after which it never touches
// those bytes again and the sender may reuse them. The frames are in
// docs/PROTOCOL.md.
//
// A peer is not trusted: every reference is bounds-checked before any byte
// is read, a reference that is out of sequence (a replay of one already
// released) is refused, a release for something not in flight is refused,
// and a region must be sealed against shrinking, so the peer cannot make a
// read fault. A hostile sender can still change its payload while the
// receiver copies it; the receiver gets whatever bytes it copied, never
// memory outside the region.
//
// Everything here is safe for concurrent use unless a method says
// otherwise; copies in and out of a region may run concurrently with each
// other and block Close until they are done.
package lane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Version is the lane's protocol version, carried by the offer.
const Version = 1

// Defaults.
const (
	DefaultSize = 256 << 20 // each region
	DefaultMin  = 256 << 10 // the smallest payload sent through the lane
)

// Control operations: the method id of a control frame.
const (
	OpOffer   uint16 = 1 // parent → child: the regions (fds by SCM_RIGHTS)
	OpAccept  uint16 = 2 // child → parent: the regions are mapped; use the lane
	OpRefuse  uint16 = 3 // child → parent: the lane is not used
	OpRelease uint16 = 4 // receiver → sender: references done with
)

// Errors. A lane error ends the connection.
var (
	ErrUnsupported = errors.New("lane: shared memory is not available here")
	ErrProtocol    = errors.New("lane: protocol violation")
	ErrClosed      = errors.New("lane: closed")
)

// RefSize is the size of an encoded Ref.
const RefSize = 16

// Ref is a payload in the sender's region.
//
//	offset 0  uint64  Off  where the payload starts in the region
//	offset 8  uint32  Len  its length in bytes
//	offset 12 uint32  Seq  the sender's sequence number, from 1, one per reference
type Ref struct {
	Off uint64
	Len uint32
	Seq uint32
}

// Append appends the encoded ref to dst.
func (r Ref) Append(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, r.Off)
	dst = binary.BigEndian.AppendUint32(dst, r.Len)
	return binary.BigEndian.AppendUint32(dst, r.Seq)
}

// ParseRef decodes a reference; b must be exactly RefSize bytes.
func ParseRef(b []byte) (Ref, error) {
	if len(b) != RefSize {
		return Ref{}, fmt.Errorf("%w: a reference is %d bytes, got %d", ErrProtocol, RefSize, len(b))
	}
	return Ref{
		Off: binary.BigEndian.Uint64(b[0:8]),
		Len: binary.BigEndian.Uint32(b[8:12]),
		Seq: binary.BigEndian.Uint32(b[12:16]),
	}, nil
}

// OfferSize is the size of an encoded Offer.
const OfferSize = 17

// Offer describes the two regions the parent passes with an offer frame.
//
//	offset 0  uint8   version (1)
//	offset 1  uint64  size of the parent's region (fd 0 of the message)
//	offset 9  uint64  size of the child's region (fd 1)
type Offer struct {
	Parent, Child uint64
}

// Append appends the encoded offer to dst.
func (o Offer) Append(dst []byte) []byte {
	dst = append(dst, Version)
	dst = binary.BigEndian.AppendUint64(dst, o.Parent)
	return binary.BigEndian.AppendUint64(dst, o.Child)
}

// ParseOffer decodes an offer and checks its sizes against max, the
// largest region the receiver maps.
func ParseOffer(b []byte, max uint64) (Offer, error) {
	if len(b) != OfferSize {
		return Offer{}, fmt.Errorf("%w: an offer is %d bytes, got %d", ErrProtocol, OfferSize, len(b))
	}
	if b[0] != Version {
		return Offer{}, fmt.Errorf("%w: offer of version %d, want %d", ErrUnsupported, b[0], Version)
	}
	o := Offer{Parent: binary.BigEndian.Uint64(b[1:9]), Child: binary.BigEndian.Uint64(b[9:17])}
	for _, n := range []uint64{o.Parent, o.Child} {
		if n == 0 || n > max {
			return Offer{}, fmt.Errorf("%w: region of %d bytes offered, want 1 to %d", ErrProtocol, n, max)
		}
	}
	return o, nil
}

// AppendRelease appends a release of seqs to dst: 4 bytes (uint32) each.
func AppendRelease(dst []byte, seqs ...uint32) []byte {
	for _, s := range seqs {
		dst = binary.BigEndian.AppendUint32(dst, s)
	}
	return dst
}

// ParseRelease calls fn for each sequence number of a release payload.
func ParseRelease(b []byte, fn func(seq uint32) error) error {
	if len(b) == 0 || len(b)%4 != 0 {
		return fmt.Errorf("%w: a release of %d bytes; want a positive multiple of 4", ErrProtocol, len(b))
	}
	for ; len(b) > 0; b = b[4:] {
		if err := fn(binary.BigEndian.Uint32(b)); err != nil {
			return err
		}
	}
	return nil
}

// HeapRegion is a region in ordinary memory, shared with nobody: for tests
// of the lane's bookkeeping in one process.
func HeapRegion(size int) *Region { return &Region{mem: make([]byte, size), heap: true} }

// Lane is one connection's lane: its own region (tx), which it writes, and
// the peer's (rx), which it reads.
type Lane struct {
	min int

	rw     sync.RWMutex // copies hold it for reading, Close for writing
	closed bool         // guarded by rw
	tx, rx *Region

	mu   sync.Mutex // the allocator, and the order of sequence numbers
	send sender     // guarded by mu

	recvNext uint32 // the next sequence number expected from the peer; owned by the reader
}

// New returns a lane writing into tx and reading from rx, used for
// payloads of at least min bytes (zero: DefaultMin). It owns the regions.
func New(tx, rx *Region, min int) *Lane {
	if min <= 0 {
		min = DefaultMin
	}
	return &Lane{min: min, tx: tx, rx: rx, send: sender{size: len(tx.mem), next: 1}, recvNext: 1}
}

// Min is the smallest payload worth the lane.
func (l *Lane) Min() int { return l.min }

// Span is room allocated in the lane's own region for one payload.
type Span struct {
	off, n int
	seq    uint32
}

// Put copies the payload parts (n bytes in all) into newly allocated room
// of the lane's own region. ok is false when there is no room (the region
// is smaller than n, or full of payloads in flight) or the lane is closed:
// send the payload through the socket then.
func (l *Lane) Put(parts [][]byte, n int) (s Span, ok bool) {
	l.mu.Lock()
	off, ok := l.send.alloc(n)
	l.mu.Unlock()
	if !ok {
		return Span{}, false
	}
	l.rw.RLock()
	if l.closed {
		l.rw.RUnlock()
		return Span{}, false
	}
	dst := l.tx.mem[off : off+n]
	for _, p := range parts {
		copyChunked(dst, p)
		dst = dst[len(p):]
	}
	l.rw.RUnlock()
	return Span{off: off, n: n}, true
}

// Ref numbers s, records it as sent and writes its reference into p
// (RefSize bytes). Call it at the moment the reference frame takes its
// place on the connection (wire.Writer.WriteFrameFill), so that sequence
// numbers go out in order.
func (l *Lane) Ref(s Span, p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seq := l.send.next
	l.send.next++
	if l.send.next == 0 {
		l.send.next = 1
	}
	l.send.sent(s.off, seq)
	Ref{Off: uint64(s.off), Len: uint32(s.n), Seq: seq}.Append(p[:0])
}

// Drop frees room that Put allocated but whose reference was never
// written.
func (l *Lane) Drop(s Span) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.send.free(s.off)
}

// Release frees the room of the reference numbered seq, which the peer is
// done with. Releasing something not in flight is a protocol violation.
func (l *Lane) Release(seq uint32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.send.release(seq) {
		return fmt.Errorf("%w: release of reference %d, which is not in flight", ErrProtocol, seq)
	}
	return nil
}

// Check validates a reference from the peer: within the peer's region, of
// at most max bytes, and the next in sequence. It must be called once per
// reference, in the order they arrive, by the goroutine reading the
// connection.
func (l *Lane) Check(r Ref, max int) error {
	switch {
	case r.Seq != l.recvNext:
		return fmt.Errorf("%w: reference %d, want %d (out of sequence: a reference replayed, or to room already released)", ErrProtocol, r.Seq, l.recvNext)
	case r.Len == 0 || int64(r.Len) > int64(max):
		return fmt.Errorf("%w: reference of %d bytes; the limit is %d", ErrProtocol, r.Len, max)
	case r.Off > uint64(len(l.rx.mem)) || uint64(r.Len) > uint64(len(l.rx.mem))-r.Off:
		return fmt.Errorf("%w: reference to bytes %d to %d of a %d-byte region (out of bounds)", ErrProtocol, r.Off, r.Off+uint64(r.Len), len(l.rx.mem))
	}
	l.recvNext++
	if l.recvNext == 0 {
		l.recvNext = 1
	}
	return nil
}

// Head returns up to n of the first bytes of a checked reference's
// payload, copied, so that the caller can decide where the rest goes.
func (l *Lane) Head(r Ref, n int) ([]byte, error) {
	l.rw.RLock()
	defer l.rw.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	n = min(n, int(r.Len))
	return slices.Clone(l.rx.mem[r.Off : r.Off+uint64(n)]), nil
}

// Get copies a checked reference's payload from skip on into dst, which
// holds exactly r.Len−skip bytes. The caller then releases the reference
// and never reads it again.
func (l *Lane) Get(r Ref, skip int, dst []byte) error {
	l.rw.RLock()
	defer l.rw.RUnlock()
	if l.closed {
		return ErrClosed
	}
	if skip < 0 || skip > int(r.Len) || len(dst) != int(r.Len)-skip {
		return fmt.Errorf("lane: Get of %d bytes after %d from a %d-byte reference", len(dst), skip, r.Len)
	}
	copyChunked(dst, l.rx.mem[r.Off+uint64(skip):r.Off+uint64(r.Len)])
	return nil
}

// Close unmaps both regions once the copies in progress are done. Later
// Puts fail and later Gets return ErrClosed. It is idempotent.
func (l *Lane) Close() error {
	l.rw.Lock()
	defer l.rw.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return errors.Join(l.tx.Close(), l.rx.Close())
}

// copyChunked copies src to dst a megabyte at a time: on the machines
// measured, one copy of tens of megabytes runs at about two thirds of the
// speed of the same bytes copied in cache-sized pieces.
func copyChunked(dst, src []byte) {
	const chunk = 1 << 20
	for len(src) > chunk {
		copy(dst[:chunk], src[:chunk])
		dst, src = dst[chunk:], src[chunk:]
	}
	copy(dst, src)
}

// sender allocates room in the lane's own region: first fit from the
// start, so that the same pages are reused and stay resident, rather than
// a ring that would walk over the whole region.
type sender struct {
	size int
	live []span // by offset
	next uint32 // the next sequence number
}

type span struct {
	off, n int
	seq    uint32 // 0 until sent
}

// align rounds allocations up to a cache line.
func align(n int) int { return (n + 63) &^ 63 }

func (s *sender) alloc(n int) (int, bool) {
	if n <= 0 || n > s.size {
		return 0, false
	}
	n = align(n)
	prev := 0
	for i, sp := range s.live {
		if sp.off-prev >= n {
			s.live = slices.Insert(s.live, i, span{off: prev, n: n})
			return prev, true
		}
		prev = sp.off + sp.n
	}
	if s.size-prev >= n {
		s.live = append(s.live, span{off: prev, n: n})
		return prev, true
	}
	return 0, false
}

func (s *sender) sent(off int, seq uint32) {
	for i := range s.live {
		if s.live[i].off == off {
			s.live[i].seq = seq
			return
		}
	}
}

func (s *sender) free(off int) {
	s.live = slices.DeleteFunc(s.live, func(sp span) bool { return sp.off == off })
}

func (s *sender) release(seq uint32) bool {
	if seq == 0 {
		return false
	}
	i := slices.IndexFunc(s.live, func(sp span) bool { return sp.seq == seq })
	if i < 0 {
		return false
	}
	s.live = slices.Delete(s.live, i, i+1)
	return true
}
