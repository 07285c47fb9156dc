package ipctest

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procxy/procxy/ipc"
)

func testRequestReply(t *testing.T, b Backend) {
	resp, req := b.Connect(t), b.Connect(t)
	resp.Subscribe("svc.echo", func(m *ipc.Msg) {
		m.RespondMsg(&ipc.Msg{Header: ipc.Header{"X": {m.Header.Get("X")}}, Data: append([]byte("re:"), m.Data...)})
	})
	flush(t, resp)
	for i := range 100 {
		r, err := req.RequestMsg(t.Context(), &ipc.Msg{Subject: "svc.echo", Header: ipc.Header{"X": {"h"}}, Data: []byte{byte(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Data) != "re:"+string([]byte{byte(i)}) || r.Header.Get("X") != "h" {
			t.Fatalf("reply %d = %q %v", i, r.Data, r.Header)
		}
	}
	// Concurrent requests each get their own answer.
	errs := make(chan error, 50)
	for i := range 50 {
		go func() {
			r, err := req.Request(t.Context(), "svc.echo", []byte{byte(i)})
			if err == nil && (len(r.Data) != 4 || r.Data[3] != byte(i)) {
				err = errors.New("wrong reply")
			}
			errs <- err
		}()
	}
	for range 50 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Respond on a message without reply.
	if err := (&ipc.Msg{Subject: "x"}).Respond(nil); !errors.Is(err, ipc.ErrNoReply) {
		t.Errorf("Respond without reply = %v, want ErrNoReply", err)
	}
	if st := req.Stats(); st.Requests < 150 || st.RequestLatency.Count < 150 {
		t.Errorf("Stats = %+v, want ≥150 requests with latencies", st)
	}
}

func testNoResponders(t *testing.T, b Backend) {
	c := b.Connect(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := c.Request(ctx, "nobody.home", []byte("x"))
	if !errors.Is(err, ipc.ErrNoResponders) {
		t.Fatalf("got %v, want ErrNoResponders", err)
	}
	var re *ipc.RequestError
	if !errors.As(err, &re) || re.Subject != "nobody.home" {
		t.Errorf("error %v does not name the subject", err)
	}
	if ctx.Err() != nil {
		t.Error("ErrNoResponders came only at the deadline")
	}
}

func testRequestCancel(t *testing.T, b Backend) {
	resp, req := b.Connect(t), b.Connect(t)
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	resp.Subscribe("slow", func(m *ipc.Msg) {
		ctx := m.Context()
		started <- struct{}{}
		<-ctx.Done()
		ended <- ctx.Err()
	})
	flush(t, resp)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := req.Request(ctx, "slow", nil)
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Request = %v, want context.Canceled", err)
	}
	if err := <-ended; err == nil {
		t.Error("the responder's context did not end")
	}
}

func testRequestDeadline(t *testing.T, b Backend) {
	resp, req := b.Connect(t), b.Connect(t)
	deadlines := make(chan time.Time, 1)
	ended := make(chan error, 1)
	resp.Subscribe("dl", func(m *ipc.Msg) {
		ctx := m.Context()
		dl, ok := ctx.Deadline()
		if !ok {
			dl = time.Time{}
		}
		deadlines <- dl
		<-ctx.Done()
		ended <- ctx.Err()
	})
	flush(t, resp)
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := req.Request(ctx, "dl", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Request = %v, want DeadlineExceeded", err)
	}
	dl := <-deadlines
	if dl.IsZero() || dl.Before(start) || dl.After(start.Add(time.Second)) {
		t.Errorf("the responder's deadline is %v, want about %v", dl, start.Add(200*time.Millisecond))
	}
	if err := <-ended; err == nil {
		t.Error("the responder's context did not end")
	}
}

func testResponderConnClosed(t *testing.T, b Backend) {
	resp, req := b.Connect(t), b.Connect(t)
	started := make(chan struct{}, 1)
	ended := make(chan struct{})
	resp.Subscribe("hang", func(m *ipc.Msg) {
		started <- struct{}{}
		<-m.Context().Done()
		close(ended)
	})
	flush(t, resp)
	errc := make(chan error, 1)
	opts := []ipc.RequestOption{}
	if !b.Features().PeerDeath {
		opts = append(opts, ipc.Keepalive(50*time.Millisecond))
	}
	go func() {
		_, err := req.Request(t.Context(), "hang", nil, opts...)
		errc <- err
	}()
	<-started
	resp.Close() // the handler's context ends; the requester learns
	<-ended
	if err := <-errc; !errors.Is(err, ipc.ErrResponderGone) {
		t.Errorf("Request = %v, want ErrResponderGone", err)
	}
}

func testRemoteErrors(t *testing.T, b Backend) {
	resp, req := b.Connect(t), b.Connect(t)
	ipc.Handle(resp, "div", func(ctx context.Context, x [2]int) (int, error) {
		if x[1] == 0 {
			return 0, &ipc.RemoteError{Name: "DivError", Code: "E_DIV0", Message: "division by zero"}
		}
		if x[1] < 0 {
			panic("negative divisor")
		}
		return x[0] / x[1], nil
	})
	ipc.Handle(resp, "plain", func(ctx context.Context, s string) (string, error) {
		return "", errors.New("plain failure: " + s)
	})
	flush(t, resp)
	q, err := ipc.Call[int](t.Context(), req, "div", [2]int{7, 2})
	if err != nil || q != 3 {
		t.Fatalf("div = %d, %v", q, err)
	}
	_, err = ipc.Call[int](t.Context(), req, "div", [2]int{1, 0})
	var re *ipc.RemoteError
	if !errors.As(err, &re) || re.Code != "E_DIV0" || re.Message != "division by zero" || re.Name != "DivError" {
		t.Errorf("div by 0: got %#v", err)
	}
	if !errors.Is(err, &ipc.RemoteError{Code: "E_DIV0"}) {
		t.Errorf("errors.Is by code failed for %v", err)
	}
	_, err = ipc.Call[int](t.Context(), req, "div", [2]int{1, -1})
	if !errors.As(err, &re) || re.Name != "panic" || !strings.Contains(re.Stack, "goroutine") {
		t.Errorf("panic: got %#v", err)
	}
	_, err = ipc.Call[string](t.Context(), req, "plain", "x")
	if !errors.As(err, &re) || re.Message != "plain failure: x" {
		t.Errorf("plain error: got %#v", err)
	}
	_, err = ipc.Call[int](t.Context(), req, "div", "not a pair")
	if !errors.As(err, &re) || re.Code != "bad_request" {
		t.Errorf("undecodable request: got %v", err)
	}
}

func testTypedHelpers(t *testing.T, b Backend) {
	type order struct {
		ID    int
		Items []string
	}
	resp, req := b.Connect(t), b.Connect(t)
	var served atomic.Int64
	ipc.Handle(resp, "orders.total", func(ctx context.Context, o order) (int, error) {
		served.Add(1)
		return len(o.Items), nil
	}, ipc.Queue("g"))
	topic := ipc.NewTopic[order](req, "news.orders")
	got := make(chan order, 1)
	ipc.NewTopic[order](resp, "news.*").Subscribe(func(ctx context.Context, o order) error { got <- o; return nil })
	flush(t, resp)
	n, err := ipc.Call[int](t.Context(), req, "orders.total", order{ID: 1, Items: []string{"a", "b"}})
	if err != nil || n != 2 {
		t.Fatalf("Call = %d, %v", n, err)
	}
	if err := topic.Publish(order{ID: 7, Items: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	if o := <-got; o.ID != 7 || len(o.Items) != 1 {
		t.Errorf("topic delivered %+v", o)
	}
}
