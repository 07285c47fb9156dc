package ipctest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/procxy/procxy/ipc"
)

// flush makes sure the bus has seen c's subscriptions.
func flush(t testing.TB, c *ipc.Conn) {
	t.Helper()
	if err := c.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// collector gathers messages by subscription name.
type collector struct {
	mu  sync.Mutex
	got map[string][]string
	n   atomic.Int64
	ch  chan struct{}
}

func newCollector() *collector {
	return &collector{got: map[string][]string{}, ch: make(chan struct{}, 1<<16)}
}

func (c *collector) handler(name string) ipc.MsgHandler {
	return func(m *ipc.Msg) {
		c.mu.Lock()
		c.got[name] = append(c.got[name], m.Subject)
		c.mu.Unlock()
		c.n.Add(1)
		c.ch <- struct{}{}
	}
}

// wait waits for n more messages.
func (c *collector) wait(t testing.TB, n int) {
	t.Helper()
	for range n {
		<-c.ch
	}
}

func testSubjects(t *testing.T, b Backend) {
	sub, pub := b.Connect(t), b.Connect(t)
	patterns := []string{"a.b", "a.*", "a.>", "*.b", ">", "a.*.c", "A.b", "*", "a.b.>", "*.*.*"}
	col := newCollector()
	for _, p := range patterns {
		if _, err := sub.Subscribe(p, col.handler(p)); err != nil {
			t.Fatalf("Subscribe(%q): %v", p, err)
		}
	}
	flush(t, sub)
	subjects := []string{"a.b", "a.c", "a.b.c", "A.b", "x.b", "a", "a.x.c.d", "b.b.b", "a*.b"}
	want := map[string][]string{}
	total := 0
	for _, s := range subjects {
		for _, p := range patterns {
			if ipc.SubjectMatches(p, s) {
				want[p] = append(want[p], s)
				total++
			}
		}
		if err := pub.Publish(s, nil); err != nil {
			t.Fatalf("Publish(%q): %v", s, err)
		}
	}
	col.wait(t, total)
	flush(t, pub)
	flush(t, sub)
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, p := range patterns {
		got := col.got[p]
		slices.Sort(got)
		w := slices.Clone(want[p])
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("subscription %q got %q, want %q", p, got, w)
		}
	}
	// The matching rules themselves.
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"a.*", "a.b", true}, {"a.*", "a.b.c", false}, {"a.>", "a", false}, {"a.>", "a.b.c", true},
		{">", "a", true}, {"*", "a.b", false}, {"a.b", "a.B", false}, {"*.b.>", "x.b.y.z", true},
	} {
		if got := ipc.SubjectMatches(tc.p, tc.s); got != tc.want {
			t.Errorf("SubjectMatches(%q, %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}

func testInvalidSubjects(t *testing.T, b Backend) {
	c := b.Connect(t)
	for _, s := range []string{"", "a..b", ".a", "a.", "a b", "a.>.b", "a\tb", string(make([]byte, ipc.MaxSubjectLen+1))} {
		if _, err := c.Subscribe(s, func(*ipc.Msg) {}); !errors.Is(err, ipc.ErrBadSubject) {
			t.Errorf("Subscribe(%q) = %v, want ErrBadSubject", s, err)
		}
	}
	for _, s := range []string{"", "a.*", "a.>", ">", "a..b", "a b"} {
		if err := c.Publish(s, nil); !errors.Is(err, ipc.ErrBadSubject) {
			t.Errorf("Publish(%q) = %v, want ErrBadSubject", s, err)
		}
		if _, err := c.Request(context.Background(), s, nil); !errors.Is(err, ipc.ErrBadSubject) {
			t.Errorf("Request(%q) = %v, want ErrBadSubject", s, err)
		}
	}
	if err := c.Publish("$IPC.DLQ.x", nil); !errors.Is(err, ipc.ErrReservedSubject) {
		t.Errorf("Publish($...) = %v, want ErrReservedSubject", err)
	}
	if _, err := c.QueueSubscribe("a", "bad queue", func(*ipc.Msg) {}); !errors.Is(err, ipc.ErrBadSubject) {
		t.Errorf("QueueSubscribe with a bad group = %v, want ErrBadSubject", err)
	}
}

func testQueueGroups(t *testing.T, b Backend) {
	pub := b.Connect(t)
	const n = 300
	var mu sync.Mutex
	seen := map[int]int{}      // message → deliveries within the group
	perMember := map[int]int{} // member → messages
	var plain atomic.Int64
	all := make(chan struct{}, 2*n)
	for i := range 3 {
		c := b.Connect(t)
		_, err := c.QueueSubscribe("jobs", "workers", func(m *ipc.Msg) {
			mu.Lock()
			seen[int(binary.BigEndian.Uint32(m.Data))]++
			perMember[i]++
			mu.Unlock()
			all <- struct{}{}
		})
		if err != nil {
			t.Fatal(err)
		}
		flush(t, c)
	}
	other := b.Connect(t)
	other.Subscribe("jobs", func(*ipc.Msg) { plain.Add(1); all <- struct{}{} })
	flush(t, other)
	for i := range n {
		if err := pub.Publish("jobs", binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 * n {
		<-all
	}
	flush(t, pub)
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		if seen[i] != 1 {
			t.Errorf("message %d reached the group %d times, want 1", i, seen[i])
		}
	}
	if plain.Load() != n {
		t.Errorf("a plain subscriber got %d messages, want all %d", plain.Load(), n)
	}
	for i := range 3 {
		if perMember[i] == 0 {
			t.Errorf("member %d got no message: %v", i, perMember)
		}
	}
}

func testOrdering(t *testing.T, b Backend) {
	sub, pub := b.Connect(t), b.Connect(t)
	const n = 10000
	done := make(chan error, 1)
	next := uint32(0)
	sub.Subscribe("seq", func(m *ipc.Msg) {
		got := binary.BigEndian.Uint32(m.Data)
		if got != next {
			done <- fmt.Errorf("got message %d, want %d", got, next)
			next = got
		}
		next++
		if next == n {
			done <- nil
		}
	})
	flush(t, sub)
	for i := range n {
		if err := pub.Publish("seq", binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func testHeaders(t *testing.T, b Backend) {
	sub, pub := b.Connect(t), b.Connect(t)
	got := make(chan *ipc.Msg, 1)
	sub.Subscribe("h", func(m *ipc.Msg) { got <- m })
	flush(t, sub)
	h := ipc.Header{"Trace-Id": {"abc"}, "Multi": {"1", "2", "3"}, "traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
	if err := pub.PublishMsg(&ipc.Msg{Subject: "h", Header: h, Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	m := <-got
	for k, v := range h {
		if !slices.Equal(m.Header.Values(k), v) {
			t.Errorf("header %s = %q, want %q", k, m.Header.Values(k), v)
		}
	}
	if len(m.Header) != len(h) {
		t.Errorf("got headers %v, want exactly %v", slices.Collect(maps.Keys(m.Header)), slices.Collect(maps.Keys(h)))
	}
	if err := pub.PublishMsg(&ipc.Msg{Subject: "h", Header: ipc.Header{"Ipc-Status": {"1"}}}); !errors.Is(err, ipc.ErrBadHeader) {
		t.Errorf("a reserved header: got %v, want ErrBadHeader", err)
	}
}

func testSyncSubscription(t *testing.T, b Backend) {
	sub, pub := b.Connect(t), b.Connect(t)
	s, err := sub.Subscribe("pull", nil)
	if err != nil {
		t.Fatal(err)
	}
	flush(t, sub)
	for i := range 5 {
		pub.Publish("pull", []byte{byte(i)})
	}
	for i := range 5 {
		m, err := s.Next(t.Context())
		if err != nil || m.Data[0] != byte(i) {
			t.Fatalf("Next = %v, %v; want message %d", m, err, i)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next on a cancelled context = %v", err)
	}
	pub.Publish("pull", []byte{9})
	n := 0
	for m, err := range s.Messages(t.Context()) {
		if err != nil || m.Data[0] != 9 {
			t.Fatalf("Messages yielded %v, %v", m, err)
		}
		n++
		s.Unsubscribe()
	}
	if n != 1 {
		t.Errorf("Messages yielded %d, want 1", n)
	}
}

func testAutoUnsubscribe(t *testing.T, b Backend) {
	sub, pub := b.Connect(t), b.Connect(t)
	var got atomic.Int64
	s, _ := sub.Subscribe("auto", func(*ipc.Msg) { got.Add(1) })
	s.AutoUnsubscribe(3)
	flush(t, sub)
	for range 10 {
		pub.Publish("auto", nil)
	}
	flush(t, pub)
	if err := s.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got.Load() != 3 {
		t.Errorf("got %d messages, want 3", got.Load())
	}
}

func testSlowConsumer(t *testing.T, b Backend) {
	errs := make(chan error, 16)
	sub := b.Connect(t, ipc.PendingLimits(10, 1<<20), ipc.OnError(func(err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	pub := b.Connect(t)
	release := make(chan struct{})
	var got atomic.Int64
	s, _ := sub.Subscribe("slow", func(*ipc.Msg) {
		<-release
		got.Add(1)
	})
	flush(t, sub)
	for range 100 {
		pub.Publish("slow", []byte("x"))
	}
	flush(t, pub)
	flush(t, sub) // everything sent has arrived: the queue is full
	if err := <-errs; !errors.Is(err, ipc.ErrSlowConsumer) {
		t.Errorf("OnError got %v, want ErrSlowConsumer", err)
	}
	close(release)
	if err := s.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := s.Dropped(); d == 0 || int64(d)+got.Load() != 100 {
		t.Errorf("dropped %d and handled %d, want some dropped and 100 in all", d, got.Load())
	}
	if sub.Stats().Dropped == 0 {
		t.Error("Stats().Dropped = 0")
	}
}
