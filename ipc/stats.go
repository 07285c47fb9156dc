package ipc

import (
	"context"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/procxy/procxy/observe"
)

// Stats are a connection's counters since it was made.
type Stats struct {
	InMsgs, InBytes   uint64 // messages delivered to this connection
	OutMsgs, OutBytes uint64 // messages sent
	Reconnects        uint64
	Dropped           uint64 // messages lost to slow subscriptions
	Errors            uint64 // asynchronous errors
	Requests          uint64 // requests made
	RequestErrors     uint64 // requests that failed
	DeadLetters       uint64 // messages put in the dead-letter queue
	Uptime            time.Duration
	RequestLatency    Histogram // of requests that got an answer
}

// counters are a Conn's live statistics.
type counters struct {
	inMsgs, inBytes, outMsgs, outBytes atomic.Uint64
	reconnects, drops, errors          atomic.Uint64
	requests, requestErrors, dead      atomic.Uint64
	latency                            histogram
}

func (s *counters) in(m *Msg) {
	s.inMsgs.Add(1)
	s.inBytes.Add(uint64(len(m.Data)))
}

func (s *counters) out(m *Msg) {
	s.outMsgs.Add(1)
	s.outBytes.Add(uint64(len(m.Data)))
}

func (s *counters) request(d time.Duration, err error) {
	s.requests.Add(1)
	if err != nil {
		s.requestErrors.Add(1)
		return
	}
	s.latency.record(d)
}

// Stats returns the connection's counters.
func (c *Conn) Stats() Stats {
	s := &c.stats
	return Stats{
		InMsgs: s.inMsgs.Load(), InBytes: s.inBytes.Load(),
		OutMsgs: s.outMsgs.Load(), OutBytes: s.outBytes.Load(),
		Reconnects: s.reconnects.Load(), Dropped: s.drops.Load(), Errors: s.errors.Load(),
		Requests: s.requests.Load(), RequestErrors: s.requestErrors.Load(), DeadLetters: s.dead.Load(),
		Uptime:         time.Since(c.start),
		RequestLatency: s.latency.snapshot(),
	}
}

// histBuckets covers 1 µs to about 36 minutes in powers of two.
const histBuckets = 32

// Histogram counts durations in buckets whose upper bounds are powers of
// two microseconds: bucket i holds durations in [2^(i-1), 2^i) µs, and
// bucket 0 everything under 1 µs.
type Histogram struct {
	Counts [histBuckets]uint64
	Count  uint64
	Sum    time.Duration
	Max    time.Duration
}

// Quantile returns an estimate of the q-quantile (0 ≤ q ≤ 1): the upper
// bound of the bucket holding it, capped at Max.
func (h Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	rank := uint64(q * float64(h.Count))
	if rank >= h.Count {
		rank = h.Count - 1
	}
	var seen uint64
	for i, n := range h.Counts {
		seen += n
		if seen > rank {
			return min(BucketBound(i), h.Max)
		}
	}
	return h.Max
}

// Mean returns the average duration.
func (h Histogram) Mean() time.Duration {
	if h.Count == 0 {
		return 0
	}
	return h.Sum / time.Duration(h.Count)
}

// BucketBound returns the upper bound of bucket i.
func BucketBound(i int) time.Duration { return time.Duration(1<<i) * time.Microsecond }

type histogram struct {
	counts [histBuckets]atomic.Uint64
	count  atomic.Uint64
	sum    atomic.Int64
	max    atomic.Int64
}

func (h *histogram) record(d time.Duration) {
	us := uint64(d / time.Microsecond)
	i := bits.Len64(us)
	if i >= histBuckets {
		i = histBuckets - 1
	}
	h.counts[i].Add(1)
	h.count.Add(1)
	h.sum.Add(int64(d))
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

func (h *histogram) snapshot() Histogram {
	var s Histogram
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.Count = h.count.Load()
	s.Sum = time.Duration(h.sum.Load())
	s.Max = time.Duration(h.max.Load())
	return s
}

// Observer is procxy's one observer (package observe). On an ipc Conn it
// sees each message the application publishes (Kind OneWay, Side Client,
// Method the subject), each request (Kind Unary, Side Client, ending with
// the reply's size or the error) and each message delivered to a
// subscription (Kind OneWay, Side Server). Service is "ipc". Its Carrier
// is the message's Header — a copy, so the caller's message is never
// changed: a tracing Observer injects a W3C traceparent on the client
// side and finds it on the delivering side, across processes and NATS.
// Replies, stream chunks and the library's own messages are not observed.
type Observer = observe.Observer

// service is the Service of ipc observations.
const service = "ipc"

// observePublish lets the observer see (and add headers to) a copy of m,
// so that the caller's message and header map are never changed. The
// returned function reports the outcome.
func (c *Conn) observePublish(ctx context.Context, m *Msg, f Flags) (*Msg, func(error)) {
	ob := c.opts.Observer
	if ob == nil || f&FlagReply != 0 {
		return m, noEndErr
	}
	cp := *m
	cp.Header = cloneHeader(m.Header)
	call := &observe.Call{Side: observe.Client, Kind: observe.OneWay, Service: service, Method: m.Subject,
		Carrier: cp.Header, Start: time.Now(), BytesOut: int64(len(m.Data))}
	ctx = ob.CallStart(ctx, call)
	return &cp, func(err error) {
		call.Duration, call.Err = time.Since(call.Start), err
		ob.CallEnd(ctx, call)
	}
}

func cloneHeader(h Header) Header {
	c := make(Header, len(h)+1)
	for k, v := range h {
		c[k] = v
	}
	return c
}

func noEnd(*Msg, error) {}
func noEndErr(error)    {}

// observeRequest starts observing a request; m is the Conn's own copy,
// whose Header it replaces by a copy before the observer may change it.
func (c *Conn) observeRequest(ctx context.Context, m *Msg) func(*Msg, error) {
	ob := c.opts.Observer
	if ob == nil {
		return noEnd
	}
	m.Header = cloneHeader(m.Header)
	call := &observe.Call{Side: observe.Client, Kind: observe.Unary, Service: service, Method: m.Subject,
		Carrier: m.Header, Start: time.Now(), BytesOut: int64(len(m.Data))}
	ctx = ob.CallStart(ctx, call)
	return func(resp *Msg, err error) {
		call.Duration, call.Err = time.Since(call.Start), err
		if resp != nil {
			call.BytesIn = int64(len(resp.Data))
		}
		ob.CallEnd(ctx, call)
	}
}

// observeDeliver reports a message delivered to this connection.
func (c *Conn) observeDeliver(m *Msg) {
	ob := c.opts.Observer
	if ob == nil {
		return
	}
	call := &observe.Call{Side: observe.Server, Kind: observe.OneWay, Service: service, Method: m.Subject,
		Start: time.Now(), BytesIn: int64(len(m.Data))}
	if m.Header != nil {
		call.Carrier = m.Header
	}
	ctx := ob.CallStart(context.Background(), call)
	ob.CallEnd(ctx, call)
}
