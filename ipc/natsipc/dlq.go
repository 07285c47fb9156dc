package natsipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/procxy/procxy/ipc"
)

// Reasons of the dead letters JetStream gives (besides ipc's own).
const (
	// ReasonMaxDeliveries: a JetStream consumer delivered the message
	// MaxDeliver times and it was never acknowledged.
	ReasonMaxDeliveries ipc.Reason = "max_deliveries"
	// ReasonTerminated: a JetStream consumer's handler gave up on the
	// message (Term).
	ReasonTerminated ipc.Reason = "terminated"
)

// Headers a dead letter from JetStream has besides ipc's (Dlq-Subject,
// Dlq-Reason, Dlq-Error): where the message is kept.
const (
	HeaderDLQStream     = "Dlq-Stream"     // the stream it was in
	HeaderDLQStreamSeq  = "Dlq-Stream-Seq" // its sequence number there
	HeaderDLQConsumer   = "Dlq-Consumer"   // the consumer that gave up
	HeaderDLQDeliveries = "Dlq-Deliveries" // how often that consumer delivered it
)

// DeadLetterOptions configure a JetStream dead-letter queue. The zero
// value is a file-backed stream IPC_DLQ that keeps the last 100,000 dead
// letters (at most 1 GiB), fed by every consumer's delivery failures.
type DeadLetterOptions struct {
	Stream   string        // the stream's name; default "IPC_DLQ"
	Replicas int           // copies in a cluster; default 1
	Memory   bool          // keep the dead letters in memory instead of files
	MaxMsgs  int64         // dead letters kept (the oldest go first); default 100,000; negative: no limit
	MaxBytes int64         // bytes kept; default 1 GiB; negative: no limit
	MaxAge   time.Duration // how long a dead letter is kept; zero: until the limits push it out
	// NoAdvisories turns off feeding the queue from JetStream's
	// MAX_DELIVERIES and MSG_TERMINATED advisories: then it holds only
	// the dead letters ipc connections publish.
	NoAdvisories bool
}

// DLQ subjects and JetStream advisories.
const (
	dlqSubjects         = "$IPC.DLQ.>"
	advisoryMaxDeliver  = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>"
	advisoryTerminated  = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>"
	advisoryStreamAffix = "_ADVISORIES"
	feederName          = "IPC_DLQ_FEEDER"

	// feedTimeout bounds the JetStream requests that turn one advisory
	// into a dead letter; past it the advisory is retried later.
	feedTimeout = 10 * time.Second
)

// DeadLetters is a dead-letter queue kept in a JetStream stream: durable,
// shared by every process, and bounded. It collects the dead letters ipc
// connections publish on $IPC.DLQ.<reason> (handler failures, expired
// messages, slow-consumer drops) and, through JetStream's advisories,
// the messages JetStream consumers failed on: those that reached their
// MaxDeliver without an acknowledgement and those a handler terminated.
// An advisory says which message; the queue fetches it from its stream
// and keeps a copy with its headers, its subject and why.
//
// The advisories are captured by a work-queue stream (Stream +
// "_ADVISORIES") and turned into dead letters by a durable consumer, so
// that none is lost while no process runs; several processes may run
// StartDeadLetters on one stream and share the work. A DeadLetters is
// safe for concurrent use.
type DeadLetters struct {
	js     jetstream.JetStream
	nc     *nats.Conn
	stream jetstream.Stream
	name   string

	cc      jetstream.ConsumeContext // nil without advisories
	mu      sync.Mutex
	sources map[string]jetstream.Stream // streams dead letters come from; guarded by mu
}

// StartDeadLetters creates (or updates) the dead-letter streams on the
// JetStream of c's server and, unless o.NoAdvisories, starts feeding the
// queue from the advisories. c must be a connection of this package.
// Close stops the feeding; the streams stay.
func StartDeadLetters(ctx context.Context, c *ipc.Conn, o DeadLetterOptions) (*DeadLetters, error) {
	nc := NATS(c)
	if nc == nil {
		return nil, errors.New("natsipc: StartDeadLetters needs a connection made by natsipc")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsipc: JetStream: %w", err)
	}
	o.Stream = or(o.Stream, "IPC_DLQ")
	storage := jetstream.FileStorage
	if o.Memory {
		storage = jetstream.MemoryStorage
	}
	limit := func(v, def int64) int64 {
		switch {
		case v == 0:
			return def
		case v < 0:
			return -1
		}
		return v
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        o.Stream,
		Description: "dead letters: messages that could not be delivered or handled",
		Subjects:    []string{dlqSubjects},
		Storage:     storage,
		Replicas:    max(o.Replicas, 1),
		MaxMsgs:     limit(o.MaxMsgs, 100_000),
		MaxBytes:    limit(o.MaxBytes, 1<<30),
		MaxAge:      o.MaxAge,
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("natsipc: dead-letter stream %s: %w", o.Stream, err)
	}
	d := &DeadLetters{js: js, nc: nc, stream: stream, name: o.Stream, sources: map[string]jetstream.Stream{}}
	if o.NoAdvisories {
		return d, nil
	}
	adv := o.Stream + advisoryStreamAffix
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        adv,
		Description: "JetStream delivery failures waiting to become dead letters in " + o.Stream,
		Subjects:    []string{advisoryMaxDeliver, advisoryTerminated},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     storage,
		Replicas:    max(o.Replicas, 1),
		MaxMsgs:     limit(o.MaxMsgs, 100_000),
	}); err != nil {
		return nil, fmt.Errorf("natsipc: advisory stream %s: %w", adv, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, adv, jetstream.ConsumerConfig{
		Durable:     feederName,
		Description: "turns delivery failures into dead letters",
		AckPolicy:   jetstream.AckExplicitPolicy,
		MaxDeliver:  -1,
		AckWait:     30 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("natsipc: advisory consumer: %w", err)
	}
	d.cc, err = cons.Consume(d.feed)
	if err != nil {
		return nil, fmt.Errorf("natsipc: consume advisories: %w", err)
	}
	return d, nil
}

// advisory holds the fields of a MAX_DELIVERIES or MSG_TERMINATED
// advisory that a dead letter needs.
type advisory struct {
	Type       string `json:"type"`
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
	Reason     string `json:"reason"` // MSG_TERMINATED: the handler's reason, if any
}

// feed turns one advisory into a dead letter (a callback of the
// advisory consumer).
func (d *DeadLetters) feed(am jetstream.Msg) {
	var a advisory
	if err := json.Unmarshal(am.Data(), &a); err != nil || a.Stream == "" {
		_ = am.Term() // not an advisory we understand: never a dead letter
		return
	}
	if a.Stream == d.name || a.Stream == d.name+advisoryStreamAffix {
		_ = am.Ack() // no dead letters of dead letters
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), feedTimeout)
	defer cancel()
	if err := d.record(ctx, a); err != nil {
		_ = am.NakWithDelay(time.Second)
		return
	}
	_ = am.Ack()
}

// record stores the dead letter for a.
func (d *DeadLetters) record(ctx context.Context, a advisory) error {
	reason, why := ReasonMaxDeliveries, fmt.Sprintf("consumer %s of stream %s delivered it %d times without an acknowledgement", a.Consumer, a.Stream, a.Deliveries)
	if strings.Contains(a.Type, "terminated") {
		reason, why = ReasonTerminated, fmt.Sprintf("consumer %s of stream %s terminated it", a.Consumer, a.Stream)
		if a.Reason != "" {
			why += ": " + a.Reason
		}
	}
	out := nats.NewMsg(string("$IPC.DLQ." + reason))
	orig, err := d.source(ctx, a.Stream)
	var raw *jetstream.RawStreamMsg
	if err == nil {
		raw, err = orig.GetMsg(ctx, a.StreamSeq)
	}
	switch {
	case err == nil:
		for k, v := range raw.Header {
			out.Header[k] = v
		}
		out.Data = raw.Data
		out.Header.Set(ipc.HeaderDLQSubject, raw.Subject)
	case errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrStreamNotFound):
		why += " (the message is no longer in the stream)"
	default:
		return err
	}
	out.Header.Set(ipc.HeaderDLQReason, string(reason))
	out.Header.Set(ipc.HeaderDLQError, why)
	out.Header.Set(HeaderDLQStream, a.Stream)
	out.Header.Set(HeaderDLQStreamSeq, strconv.FormatUint(a.StreamSeq, 10))
	out.Header.Set(HeaderDLQConsumer, a.Consumer)
	out.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(a.Deliveries, 10))
	// An advisory delivered twice must not make two dead letters.
	out.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s:%s:%d:%s", reason, a.Stream, a.StreamSeq, a.Consumer))
	_, err = d.js.PublishMsg(ctx, out)
	return err
}

// source returns the stream a dead letter comes from.
func (d *DeadLetters) source(ctx context.Context, name string) (jetstream.Stream, error) {
	d.mu.Lock()
	s := d.sources[name]
	d.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := d.js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	if len(d.sources) > 1024 {
		clear(d.sources)
	}
	d.sources[name] = s
	d.mu.Unlock()
	return s, nil
}

// All yields the dead letters in the queue, oldest first: each as an
// ipc.DeadLetter whose Seq is its sequence number in the stream and whose
// Msg is the message as it was sent (subject, headers, data). A failure
// to read the stream is yielded last.
func (d *DeadLetters) All(ctx context.Context) iter.Seq2[ipc.DeadLetter, error] {
	return func(yield func(ipc.DeadLetter, error) bool) {
		for raw, err := range d.raw(ctx) {
			if err != nil {
				yield(ipc.DeadLetter{}, err)
				return
			}
			if !yield(deadLetter(raw), nil) {
				return
			}
		}
	}
}

// raw yields the messages of the stream, oldest first.
func (d *DeadLetters) raw(ctx context.Context) iter.Seq2[*jetstream.RawStreamMsg, error] {
	return func(yield func(*jetstream.RawStreamMsg, error) bool) {
		for seq := uint64(1); ; {
			// The first message at seq or after.
			raw, err := d.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(dlqSubjects))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return
			}
			if err != nil {
				yield(nil, fmt.Errorf("natsipc: read dead letter %d of %s: %w", seq, d.name, err))
				return
			}
			if !yield(raw, nil) {
				return
			}
			seq = raw.Sequence + 1
		}
	}
}

// deadLetter turns a message of the stream into an ipc.DeadLetter.
func deadLetter(raw *jetstream.RawStreamMsg) ipc.DeadLetter {
	h := ipc.Header{}
	for k, v := range raw.Header {
		if !strings.HasPrefix(k, "Dlq-") && k != jetstream.MsgIDHeader {
			h[k] = v
		}
	}
	if len(h) == 0 {
		h = nil
	}
	subject := raw.Header.Get(ipc.HeaderDLQSubject)
	dl := ipc.DeadLetter{
		Seq:    raw.Sequence,
		Msg:    &ipc.Msg{Subject: subject, Header: h, Data: raw.Data},
		Reason: ipc.Reason(raw.Header.Get(ipc.HeaderDLQReason)),
		Time:   raw.Time,
	}
	if e := raw.Header.Get(ipc.HeaderDLQError); e != "" {
		dl.Err = errors.New(e)
	}
	return dl
}

// Replay publishes again every dead letter for which keep returns true
// (nil: all), oldest first, to the subject it was sent to, and removes
// it from the queue. A message that came from a JetStream stream is
// published with JetStream, so Replay knows the stream stored it again
// (and its consumers get it anew); the others are published and flushed.
// It returns how many were replayed; one that fails stays. Dead letters
// that arrive meanwhile (a replayed message may fail again) are left for
// the next Replay.
func (d *DeadLetters) Replay(ctx context.Context, keep func(ipc.DeadLetter) bool) (int, error) {
	// Only what is there now: a replayed message can fail again.
	info, err := d.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("natsipc: dead-letter stream %s: %w", d.name, err)
	}
	var n int
	var errs []error
	for raw, err := range d.raw(ctx) {
		if err != nil {
			return n, errors.Join(append(errs, err)...)
		}
		if raw.Sequence > info.State.LastSeq {
			break
		}
		dl := deadLetter(raw)
		if keep != nil && !keep(dl) || dl.Msg.Subject == "" {
			continue
		}
		m := &nats.Msg{Subject: dl.Msg.Subject, Header: nats.Header(dl.Msg.Header), Data: dl.Msg.Data}
		if raw.Header.Get(HeaderDLQStream) != "" {
			_, err = d.js.PublishMsg(ctx, m)
		} else if err = d.nc.PublishMsg(m); err == nil {
			err = flushNATS(ctx, d.nc)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("natsipc: replay dead letter %d: %w", dl.Seq, mapErr(err)))
			continue
		}
		if err := d.Remove(ctx, dl.Seq); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// Len returns how many dead letters the queue holds.
func (d *DeadLetters) Len(ctx context.Context) (uint64, error) {
	info, err := d.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("natsipc: dead-letter stream %s: %w", d.name, err)
	}
	return info.State.Msgs, nil
}

// Remove deletes the dead letter with sequence number seq.
func (d *DeadLetters) Remove(ctx context.Context, seq uint64) error {
	if err := d.stream.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("natsipc: remove dead letter %d from %s: %w", seq, d.name, err)
	}
	return nil
}

// Close stops feeding the queue from advisories (the advisory being
// turned into a dead letter finishes first); the streams and what they
// hold stay. It does not close the connection.
func (d *DeadLetters) Close() error {
	if d.cc != nil {
		d.cc.Drain()
		<-d.cc.Closed()
	}
	return nil
}
