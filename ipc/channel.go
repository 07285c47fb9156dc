package ipc

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"github.com/procxy/procxy/rpc/codec"
)

// DefaultChannelHeartbeat is how often an idle channel end says it is
// alive; the other end decides it is gone after three silent intervals.
// Over the ipc server a peer's death is noticed at once anyway.
const DefaultChannelHeartbeat = 5 * time.Second

// Channel is one end of a named, bidirectional, typed channel between two
// connections, opened with [OpenChannel] and accepted with
// [ChannelListener.Accept]. Each direction has flow control, so a slow
// reader slows its writer. Both ends learn when the other closes or goes
// away: Done is closed and Recv returns an error wrapping ErrChannelClosed.
// Send and Recv may be called from different goroutines.
type Channel[T any] struct {
	c      *Conn
	name   string
	f      *flow
	cd     codec.Codec
	flags  Flags // the acceptor's messages answer the opening request
	served *Msg  // acceptor: the opening request

	gone     chan struct{}
	goneOnce sync.Once
	why      error // set before gone is closed
	stop     chan struct{}
	stopOnce sync.Once
}

// ChannelOption configures a channel end.
type ChannelOption interface{ applyChannel(*channelOpts) }

type channelOpts struct {
	codec     codec.Codec
	heartbeat time.Duration
	queue     string
	window    int
}

type chanOpt func(*channelOpts)

func (f chanOpt) applyChannel(o *channelOpts) { f(o) }

// ChannelHeartbeat sets how often an idle end says it is alive (negative: never).
func ChannelHeartbeat(d time.Duration) ChannelOption {
	return chanOpt(func(o *channelOpts) { o.heartbeat = d })
}

// ChannelWindow sets how many messages may be in flight to this end.
func ChannelWindow(n int) ChannelOption { return chanOpt(func(o *channelOpts) { o.window = n }) }

func channelOptions(opts []ChannelOption) channelOpts {
	o := channelOpts{codec: codec.Msgpack, heartbeat: DefaultChannelHeartbeat, window: DefaultWindow}
	for _, opt := range opts {
		opt.applyChannel(&o)
	}
	return o
}

func channelSubject(name string) (string, error) {
	s := subjectChannel + "." + name
	if err := checkSubject(s, false); err != nil {
		return "", fmt.Errorf("ipc: channel name %q: %w", name, err)
	}
	return s, nil
}

// OpenChannel opens the channel name to whoever listens for it
// ([ListenChannel]); it fails with ErrNoResponders when nobody does.
func OpenChannel[T any](ctx context.Context, c *Conn, name string, opts ...ChannelOption) (*Channel[T], error) {
	subj, err := channelSubject(name)
	if err != nil {
		return nil, err
	}
	o := channelOptions(opts)
	f, err := c.newFlow(c.ctx, o.window)
	if err != nil {
		return nil, err
	}
	ch := newChannel[T](c, name, f, o, 0, nil)
	req := &Msg{Subject: subj, Reply: f.self, meta: meta{kind: kindStreamReq, credit: uint32(f.window), keepalive: max(o.heartbeat, 0)}}
	if err := c.publish(req, FlagRequest); err != nil {
		f.finish(err)
		return nil, err
	}
	// The acceptor's first message says where to send, and our credit.
	for {
		m, err := f.recv(ctx)
		if err != nil {
			if ctx.Err() != nil {
				c.abandon(f)
			}
			f.finish(ErrClosed)
			return nil, &RequestError{Subject: subj, Err: err}
		}
		if m.meta.kind == kindGo || f.peerKnown() {
			break
		}
	}
	ch.start(o)
	return ch, nil
}

func (f *flow) peerKnown() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peer != ""
}

func newChannel[T any](c *Conn, name string, f *flow, o channelOpts, flags Flags, served *Msg) *Channel[T] {
	ch := &Channel[T]{c: c, name: name, f: f, cd: o.codec, flags: flags, served: served,
		gone: make(chan struct{}), stop: make(chan struct{})}
	f.flags = flags
	f.mu.Lock()
	f.onGone = func(err error) { ch.markGone(err) }
	f.dead = ch.gone
	f.mu.Unlock()
	return ch
}

// start begins heartbeats and watching the peer.
func (ch *Channel[T]) start(o channelOpts) {
	if o.heartbeat > 0 {
		ch.c.wg.Go(func() { ch.heartbeat(o.heartbeat) })
	}
	if ch.served != nil {
		// The opening request's context ends when the opener goes away
		// (errRequesterGone), this connection breaks, or this end closes.
		ctx := ch.served.Context()
		context.AfterFunc(ctx, func() { ch.markGone(Cause(ctx)) })
	}
}

func (ch *Channel[T]) heartbeat(d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if ch.f.silentFor() > 3*d {
				ch.markGone(fmt.Errorf("no sign of life for %v", 3*d))
				return
			}
			_ = ch.f.control(meta{kind: kindAlive}, ch.flags)
		case <-ch.stop:
			return
		case <-ch.gone:
			return
		case <-ch.c.ctx.Done():
			return
		}
	}
}

// markGone records that the other end is gone (or this one closed).
func (ch *Channel[T]) markGone(err error) {
	ch.goneOnce.Do(func() {
		ch.why = goneReason(err)
		close(ch.gone)
	})
}

// errOtherEndGone is why a channel ends when the other end's connection or
// process went away without closing it.
var errOtherEndGone = errors.New("the other end went away")

// goneReason words why a channel ended as its user sees it: the requester
// and the responder of the opening request are the channel's other end.
func goneReason(err error) error {
	if errors.Is(err, ErrResponderGone) || errors.Is(err, errRequesterGone) {
		return errOtherEndGone
	}
	return err
}

// Name returns the channel's name.
func (ch *Channel[T]) Name() string { return ch.name }

// Done is closed when the channel is over: the other end closed it or went
// away, or this end closed it.
func (ch *Channel[T]) Done() <-chan struct{} { return ch.gone }

// Send sends v to the other end, waiting while it has no credit left.
func (ch *Channel[T]) Send(ctx context.Context, v T) error {
	data, err := ch.cd.Append(nil, v)
	if err != nil {
		return fmt.Errorf("ipc: channel %s: encode %T: %w", ch.name, v, err)
	}
	m := &Msg{Data: data}
	if err := ch.c.checkSize(m); err != nil {
		return err
	}
	select {
	case <-ch.gone:
		return ch.closedErr()
	default:
	}
	if err := ch.f.send(ctx, m); err != nil {
		select {
		case <-ch.gone:
			return ch.closedErr()
		default:
		}
		if err == errFlowDead || errors.Is(err, errPeerCancelled) || errors.Is(err, ErrResponderGone) {
			return ch.closedErr()
		}
		return err
	}
	return nil
}

// Recv returns the next value from the other end. Once the other end has
// closed the channel (after its last value) or gone away, it returns an
// error wrapping ErrChannelClosed.
func (ch *Channel[T]) Recv(ctx context.Context) (T, error) {
	var v T
	for {
		m, err := ch.f.recv(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return v, ctx.Err()
			}
			if err == errEnd || err == errPeerCancelled || err == errFlowDead || errors.Is(err, ErrResponderGone) || errors.Is(err, ErrConnectionLost) {
				// Values that arrived before the end were delivered first.
				ch.markGone(err)
				return v, ch.closedErr()
			}
			return v, err
		}
		if m.meta.kind != kindChunk {
			continue
		}
		if err := ch.cd.Unmarshal(m.Data, &v); err != nil {
			return v, fmt.Errorf("ipc: channel %s: decode into %T: %w", ch.name, v, err)
		}
		return v, nil
	}
}

// All yields the values from the other end until it closes the channel
// (ending the loop normally) or ctx ends; another failure is yielded last.
func (ch *Channel[T]) All(ctx context.Context) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			v, err := ch.Recv(ctx)
			if errors.Is(err, ErrChannelClosed) {
				return
			}
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}

func (ch *Channel[T]) closedErr() error {
	if ch.why == nil || ch.why == errEnd {
		return fmt.Errorf("%w: %s: closed by the other end", ErrChannelClosed, ch.name)
	}
	return fmt.Errorf("%w: %s: %w", ErrChannelClosed, ch.name, ch.why)
}

// Close ends the channel; the other end's Recv returns ErrChannelClosed
// after the values already sent. It is idempotent.
func (ch *Channel[T]) Close() error {
	var err error
	ch.stopOnce.Do(func() {
		close(ch.stop)
		select {
		case <-ch.gone:
		default:
			if ch.served != nil {
				err = ch.f.control(meta{kind: kindEnd}, FlagReply)
				ch.c.endServe(ch.served)
			} else {
				err = ch.f.control(meta{kind: kindEnd}, 0)
				_ = ch.c.tr.Cancel(ch.f.self)
			}
		}
		ch.markGone(nil)
		ch.f.finish(ErrClosed)
	})
	return err
}

// ChannelListener accepts channels opened to one name.
type ChannelListener[T any] struct {
	c    *Conn
	name string
	o    channelOpts
	sub  *Subscription
}

// ListenChannel listens for channels opened to name. Several listeners of
// one name share the openings, one listener each.
func ListenChannel[T any](c *Conn, name string, opts ...ChannelOption) (*ChannelListener[T], error) {
	subj, err := channelSubject(name)
	if err != nil {
		return nil, err
	}
	o := channelOptions(opts)
	sub, err := c.subscribe(subj, "channel", nil, modeSync)
	if err != nil {
		return nil, err
	}
	return &ChannelListener[T]{c: c, name: name, o: o, sub: sub}, nil
}

// Accept waits for the next channel opened to the listener's name.
func (l *ChannelListener[T]) Accept(ctx context.Context) (*Channel[T], error) {
	for {
		m, err := l.sub.Next(ctx)
		if err != nil {
			return nil, err
		}
		if m.Reply == "" || m.meta.kind != kindStreamReq {
			continue // not an opening
		}
		sctx := m.Context() // track the opening: its end is the opener's going away
		f, err := l.c.newFlow(l.c.ctx, l.o.window)
		if err != nil {
			return nil, err
		}
		f.peer, f.credit = m.Reply, int(m.meta.credit)
		ch := newChannel[T](l.c, l.name, f, l.o, FlagReply|FlagMore, m)
		if err := f.control(meta{kind: kindGo, credit: uint32(f.window)}, FlagReply|FlagMore); err != nil {
			f.finish(err)
			return nil, err
		}
		if sctx.Err() != nil {
			ch.markGone(ErrResponderGone)
		}
		ch.start(l.o)
		return ch, nil
	}
}

// Close stops listening.
func (l *ChannelListener[T]) Close() error { return l.sub.Unsubscribe() }
