package ipc

import (
	"context"
	"math/bits"
	"sync/atomic"
	"time"
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

// Observer receives a connection's messages and requests as they happen,
// so that metrics and tracing plug in without the library depending on
// them. Methods are called on the goroutine doing the work and must be
// quick. A tracing observer injects its context (a W3C traceparent) into
// m.Header in Publish and Request and reads it back in Deliver.
type Observer interface {
	// Publish is called before m leaves: a publish, a request's message,
	// a response or a stream chunk. It may add headers.
	Publish(ctx context.Context, m *Msg)
	// Deliver is called when m is delivered to a subscription.
	Deliver(m *Msg)
	// Request is called when a request starts; it may add headers to m.
	// The returned function is called once with the outcome.
	Request(ctx context.Context, m *Msg) func(resp *Msg, err error)
}

// observePublish lets the observer see (and add headers to) a copy of m,
// so that the caller's message and header map are never changed.
func (c *Conn) observePublish(ctx context.Context, m *Msg) *Msg {
	ob := c.opts.Observer
	if ob == nil {
		return m
	}
	cp := *m
	cp.Header = cloneHeader(m.Header)
	ob.Publish(ctx, &cp)
	return &cp
}

func cloneHeader(h Header) Header {
	c := make(Header, len(h)+1)
	for k, v := range h {
		c[k] = v
	}
	return c
}

func noEnd(*Msg, error) {}

// observeRequest starts observing a request; m is the Conn's own copy,
// whose Header it replaces by a copy before the observer may change it.
func (c *Conn) observeRequest(ctx context.Context, m *Msg) func(*Msg, error) {
	if ob := c.opts.Observer; ob != nil {
		m.Header = cloneHeader(m.Header)
		return ob.Request(ctx, m)
	}
	return noEnd
}
