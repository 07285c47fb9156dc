package ipc

import (
	"context"
	"fmt"

	"github.com/procxy/procxy/rpc/codec"
)

// Topic is a typed view of one subject: values of T are encoded on
// Publish and decoded for subscribers.
type Topic[T any] struct {
	c       *Conn
	subject string
	cd      codec.Codec
}

// TopicOption configures a Topic ([WithCodec]).
type TopicOption interface{ applyTopic(*topicOpts) }

type topicOpts struct{ codec codec.Codec }

// NewTopic returns the topic for subject on c. Publish needs a subject
// without wildcards; Subscribe takes wildcards too.
func NewTopic[T any](c *Conn, subject string, opts ...TopicOption) *Topic[T] {
	o := topicOpts{codec: codec.Msgpack}
	for _, opt := range opts {
		opt.applyTopic(&o)
	}
	return &Topic[T]{c: c, subject: subject, cd: o.codec}
}

// Subject returns the topic's subject.
func (t *Topic[T]) Subject() string { return t.subject }

// Publish sends v to the topic's subscribers.
func (t *Topic[T]) Publish(v T) error { return t.PublishMsg(v, nil) }

// PublishMsg sends v with headers h.
func (t *Topic[T]) PublishMsg(v T, h Header) error {
	data, err := t.cd.Append(nil, v)
	if err != nil {
		return fmt.Errorf("ipc: topic %s: encode %T: %w", t.subject, v, err)
	}
	return t.c.PublishMsg(&Msg{Subject: t.subject, Header: h, Data: data})
}

// TopicSubOption configures a topic subscription.
type TopicSubOption interface{ applyTopicSub(*topicSubOpts) }

type topicSubOpts struct {
	attempts int
	queue    string
}

type topicSubOpt func(*topicSubOpts)

func (f topicSubOpt) applyTopicSub(o *topicSubOpts) { f(o) }

// Attempts sets how many times a failing handler runs for one value (with
// backoff) before the message goes to the dead-letter queue; default 1.
func Attempts(n int) TopicSubOption { return topicSubOpt(func(o *topicSubOpts) { o.attempts = n }) }

// InQueue makes the subscription a member of queue group name.
func InQueue(name string) TopicSubOption {
	return topicSubOpt(func(o *topicSubOpts) { o.queue = name })
}

// Subscribe calls fn for each value published to the topic, in order. A
// value fn fails on (after Attempts tries) or that cannot be decoded goes
// to the dead-letter queue with ReasonHandlerFailed.
func (t *Topic[T]) Subscribe(fn func(ctx context.Context, v T) error, opts ...TopicSubOption) (*Subscription, error) {
	o := topicSubOpts{attempts: 1}
	for _, opt := range opts {
		opt.applyTopicSub(&o)
	}
	h := Retry(max(o.attempts, 1), func(m *Msg) error {
		var v T
		if err := decodeInto(t.cd, m.Data, &v); err != nil {
			return fmt.Errorf("ipc: topic %s: decode into %T: %w", t.subject, v, err)
		}
		return fn(m.Context(), v)
	})
	return t.c.QueueSubscribe(t.subject, o.queue, h)
}
