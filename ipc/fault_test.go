//go:build linux

package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/observe"
	"github.com/procxy/procxy/rpc/codec"
)

// stateChange is one OnState callback.
type stateChange struct {
	s   ipc.State
	err error
	at  time.Time
}

// watchStates returns an OnState option and the channel it reports to.
func watchStates() (ipc.Option, <-chan stateChange) {
	ch := make(chan stateChange, 256)
	return ipc.OnState(func(s ipc.State, err error) {
		select {
		case ch <- stateChange{s, err, time.Now()}:
		default:
		}
	}), ch
}

// recv receives from ch, failing the test if nothing comes within waitLimit.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("waited %v for %s", waitLimit, what)
	}
	var zero T
	return zero
}

// awaitState waits for state s on a channel from watchStates.
func awaitState(t *testing.T, states <-chan stateChange, s ipc.State) stateChange {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		select {
		case st := <-states:
			if st.s == s {
				return st
			}
		case <-timer.C:
			t.Fatalf("no %v state within %v", s, waitLimit)
		}
	}
}

// TestProcessServerKilled kills the server process with SIGKILL while
// clients load it, then starts a new one on the same address: pending
// requests fail at once with ErrConnectionLost, responders' contexts end,
// publishes made meanwhile are buffered and delivered after the reconnect,
// and subscriptions and responders work again.
func TestProcessServerKilled(t *testing.T) {
	dir, err := shortDir(t)
	if err != nil {
		t.Fatal(err)
	}
	addr := filepath.Join(dir, "s.sock")
	// The restarted server's own endpoint subscribes to evt.> before it
	// accepts anyone, so the buffered publishes have a subscriber whatever
	// order the clients come back in.
	srvCfg := childConfig{Role: "server", Addr: addr, Listen: []string{"evt.>"}}
	s1 := startProc(t, "server-1", srvCfg, false)
	clientCfg := childConfig{Role: "client", Addr: addr, Reconnect: 10 * time.Millisecond}
	clientCfg.Name = "a"
	a := startProc(t, "a", clientCfg, false)
	clientCfg.Name = "b"
	b := startProc(t, "b", clientCfg, false)
	onState, states := watchStates()
	me, err := ipc.Dial(t.Context(), addr, ipc.Name("test"), onState, ipc.Reconnect(10*time.Millisecond, 40*time.Millisecond, 0.2, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer me.Close()

	a.must(command{Op: "handle", Subject: "svc.hang", Mode: "hang", Tag: "hang"})
	a.must(command{Op: "handle", Subject: "svc.echo", Mode: "echo"})
	a.must(command{Op: "sub", Subject: "evt.>", Tag: "evt"})

	// Load: the test publishes and makes requests as fast as it can, and b
	// floods too, until the kill.
	stopLoad := make(chan struct{})
	var load sync.WaitGroup
	var loadReqs, loadPubs int
	var loadErr error
	warm := make(chan struct{}) // closed once the load is going
	load.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stopLoad:
				return
			default:
			}
			if me.Publish("load.x", []byte(strconv.Itoa(i))) == nil {
				loadPubs++
			}
			if _, err := me.Request(t.Context(), "svc.echo", []byte("load")); err == nil {
				if loadReqs++; loadReqs == 20 {
					close(warm)
				}
			} else if loadErr == nil {
				loadErr = err
			}
		}
	})
	bLoad := b.start(command{Op: "pub", Subject: "load.b", Size: 1024, N: 20000})
	recv(t, warm, "the load to start")

	// Requests in flight at the responder when the server dies: five from
	// the test process and one from b.
	const pendingN = 5
	pendingErrs := make(chan error, pendingN)
	for i := range pendingN {
		go func() {
			_, err := me.Request(t.Context(), "svc.hang", []byte(strconv.Itoa(i)))
			pendingErrs <- err
		}()
	}
	bPending := b.start(command{Op: "req", Subject: "svc.hang", Data: "b"})
	for range pendingN + 1 {
		a.await("hang-got")
	}

	s1.kill()
	killed := time.Now()
	close(stopLoad)

	for range pendingN {
		err := recv(t, pendingErrs, "a pending request to fail")
		if !errors.Is(err, ipc.ErrConnectionLost) {
			t.Fatalf("a request pending when the server died failed with %v, want ErrConnectionLost", err)
		}
		t.Logf("pending request: %v (after %v)", err, time.Since(killed).Round(time.Microsecond))
	}
	if e := <-bPending; !e.is("ErrConnectionLost") {
		t.Errorf("b's pending request: %q, want ErrConnectionLost", e.Err)
	}
	for range pendingN + 1 {
		if e := a.await("hang-cancelled"); !e.is("ErrConnectionLost") {
			t.Errorf("a responder's context ended with %q, want the cause ErrConnectionLost", e.Err)
		}
	}
	st := awaitState(t, states, ipc.StateDisconnected)
	t.Logf("test client: disconnected: %v", st.err)
	load.Wait()
	t.Logf("load before the kill: %d publishes and %d requests from the test (first failure: %v); b: %s", loadPubs, loadReqs, loadErr, (<-bLoad).Err)

	// While disconnected: publishes are buffered, requests fail at once.
	const buffered = 100
	for i := range buffered {
		if err := me.Publish("evt.buffered", []byte(strconv.Itoa(i))); err != nil {
			t.Fatalf("publish %d while disconnected: %v", i, err)
		}
	}
	if _, err := me.Request(t.Context(), "svc.echo", nil); !errors.Is(err, ipc.ErrConnectionLost) {
		t.Errorf("a request while disconnected = %v, want ErrConnectionLost", err)
	}

	srvCfg.Log = true
	s2 := startProc(t, "server-2", srvCfg, true)
	awaitState(t, states, ipc.StateReconnected)
	for i := range buffered {
		e := s2.await("endpoint")
		if e.Subject != "evt.buffered" || e.Data != strconv.Itoa(i) {
			t.Fatalf("restarted server got %s %q, want buffered publish %d", e.Subject, e.Data, i)
		}
	}
	for _, p := range []*proc{a, b} {
		if e := p.await("resubscribed"); e.Err != "" {
			t.Fatalf("%s after the reconnect: %s", p.name, e.Err)
		}
	}
	// a's subscription and responders are back.
	if err := me.Publish("evt.after", []byte("x")); err != nil {
		t.Fatal(err)
	}
	var early int
	for e := a.await("evt"); e.Subject != "evt.after"; e = a.await("evt") {
		early++
	}
	t.Logf("a got %d of the buffered publishes too (it reconnected first)", early)
	if resp, err := me.Request(t.Context(), "svc.echo", []byte("again")); err != nil || string(resp.Data) != "again" {
		t.Errorf("request after the restart = %v, %v", resp, err)
	}
	if e := b.must(command{Op: "req", Subject: "svc.echo", Data: "b again"}); e.Data != "b again" {
		t.Errorf("b's request after the restart answered %q", e.Data)
	}
	if n := me.Stats().Reconnects; n != 1 {
		t.Errorf("Stats().Reconnects = %d, want 1", n)
	}
	// What the clients kept for the reconnect was whole frames.
	if log := s2.stderr.String(); strings.Contains(log, "protocol violation") {
		t.Errorf("the restarted server saw a protocol violation:\n%s", log)
	}
}

// TestProcessClientKilledMidRequest kills a requester process while its
// request is being served: the responder's context ends at once, with the
// cause saying the requester gave up — for a responder in the test process
// and one in another process.
func TestProcessClientKilledMidRequest(t *testing.T) {
	cl := newCluster(t, "unix", childConfig{})
	me := cl.dial(t)
	got := make(chan struct{}, 1)
	ended := make(chan error, 1)
	if _, err := ipc.Handle(me, "svc.slow", func(ctx context.Context, req string) (string, error) {
		got <- struct{}{}
		<-ctx.Done()
		ended <- ipc.Cause(ctx)
		return "", ctx.Err()
	}, ipc.WithCodec(codec.JSON)); err != nil {
		t.Fatal(err)
	}
	if err := me.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	responder := cl.startClient(t, "responder")
	responder.must(command{Op: "handle", Subject: "svc.hang", Mode: "hang", Tag: "hang"})
	responder.must(command{Op: "handle", Subject: "svc.echo", Mode: "echo"})

	t.Run("responder-in-test", func(t *testing.T) {
		requester := cl.startClient(t, "requester")
		answer := requester.start(command{Op: "req", Subject: "svc.slow", Data: `"x"`})
		recv(t, got, "the request at the responder")
		requester.kill()
		cause := recv(t, ended, "the responder's context to end")
		if cause == nil {
			t.Fatal("the responder's context ended without a cause")
		}
		t.Logf("responder's context cause: %v", cause)
		if e := <-answer; e.Err == "" {
			t.Errorf("the killed requester got an answer: %+v", e)
		}
	})
	t.Run("responder-in-process", func(t *testing.T) {
		requester := cl.startClient(t, "requester")
		requester.start(command{Op: "req", Subject: "svc.hang", Data: "x"})
		responder.await("hang-got")
		requester.kill()
		e := responder.await("hang-cancelled")
		if !e.is("Canceled") || e.Subject == "" {
			t.Errorf("responder process: context ended with %q (cause %q), want Canceled with a cause", e.Err, e.Subject)
		}
		t.Logf("responder process: %s (cause: %s)", e.Err, e.Subject)
	})
	// The server kept serving.
	if resp, err := me.Request(t.Context(), "svc.echo", []byte("still here")); err != nil || string(resp.Data) != "still here" {
		t.Errorf("request after the kills = %v, %v", resp, err)
	}
	st := cl.srv.must(command{Op: "stats"}).Stats
	if st.RequestsInFlight != 0 {
		t.Errorf("server tracks %d requests after their requesters died", st.RequestsInFlight)
	}
}

// TestProcessServerFrozen stops the server with SIGSTOP: every client
// detects the dead peer by its missed heartbeats, a pending request fails
// with ErrConnectionLost, and after SIGCONT the clients reconnect.
func TestProcessServerFrozen(t *testing.T) {
	const hb = 200 * time.Millisecond
	cl := newCluster(t, "unix", childConfig{Heartbeat: hb})
	cl.client.Heartbeat, cl.client.Reconnect = hb, 20*time.Millisecond
	a := cl.startClient(t, "a")
	a.must(command{Op: "handle", Subject: "svc.echo", Mode: "echo"})
	a.must(command{Op: "handle", Subject: "svc.hang", Mode: "hang", Tag: "hang"})
	onState, states := watchStates()
	me := cl.dial(t, onState, ipc.Heartbeat(hb), ipc.Reconnect(20*time.Millisecond, 80*time.Millisecond, 0.2, 0))

	pending := make(chan error, 1)
	go func() {
		_, err := me.Request(t.Context(), "svc.hang", nil)
		pending <- err
	}()
	a.await("hang-got")
	// Drop state changes from before the freeze (there should be none).
	for len(states) > 0 {
		st := <-states
		t.Logf("state before the freeze: %v %v", st.s, st.err)
	}
	cl.srv.signal(syscall.SIGSTOP)
	stopped := time.Now()
	defer cl.srv.signal(syscall.SIGCONT)

	st := awaitState(t, states, ipc.StateDisconnected)
	if st.err == nil || !strings.Contains(st.err.Error(), "heartbeat") {
		t.Errorf("test client: disconnected with %v, want the missed heartbeats named", st.err)
	}
	if err := recv(t, pending, "the pending request to fail"); !errors.Is(err, ipc.ErrConnectionLost) {
		t.Errorf("the pending request = %v, want ErrConnectionLost", err)
	}
	e := a.awaitState(ipc.StateDisconnected)
	if !strings.Contains(e.Err, "heartbeat") {
		t.Errorf("process a: disconnected with %q, want the missed heartbeats named", e.Err)
	}
	t.Logf("dead server detected after %.2f heartbeat intervals by the test client (%v), %.2f by process a (%s)",
		float64(st.at.Sub(stopped))/float64(hb), st.err, float64(e.At.Sub(stopped))/float64(hb), e.Err)

	cl.srv.signal(syscall.SIGCONT)
	awaitState(t, states, ipc.StateReconnected)
	if e := a.await("resubscribed"); e.Err != "" {
		t.Fatal(e.Err)
	}
	if resp, err := me.Request(t.Context(), "svc.echo", []byte("back")); err != nil || string(resp.Data) != "back" {
		t.Errorf("request after SIGCONT = %v, %v", resp, err)
	}
}

// TestProcessClientFrozen stops a client process with SIGSTOP: the server
// drops it for its missed heartbeats, and the others are unaffected.
func TestProcessClientFrozen(t *testing.T) {
	const hb = 200 * time.Millisecond
	cl := newCluster(t, "unix", childConfig{Heartbeat: hb})
	cl.client.Heartbeat = hb
	a := cl.startClient(t, "a")
	a.must(command{Op: "handle", Subject: "svc.hang", Mode: "hang", Tag: "hang"})
	b := cl.startClient(t, "b")
	b.must(command{Op: "handle", Subject: "svc.echo", Mode: "echo"})
	me := cl.dial(t, ipc.Heartbeat(hb))
	// A request a is serving when it freezes fails once the server drops a.
	pending := make(chan error, 1)
	go func() {
		_, err := me.Request(t.Context(), "svc.hang", nil)
		pending <- err
	}()
	a.await("hang-got")
	a.signal(syscall.SIGSTOP)
	stopped := time.Now()
	defer a.signal(syscall.SIGCONT)
	e := cl.srv.await("client-gone")
	if e.Subject != "a" || !strings.Contains(e.Err, "heartbeat") {
		t.Errorf("server dropped %q with %q, want a for its missed heartbeats", e.Subject, e.Err)
	}
	t.Logf("frozen client dropped after %.2f heartbeat intervals: %s", float64(e.At.Sub(stopped))/float64(hb), e.Err)
	if err := recv(t, pending, "the request a was serving to fail"); !errors.Is(err, ipc.ErrResponderGone) {
		t.Errorf("the request a was serving = %v, want ErrResponderGone", err)
	}
	if resp, err := me.Request(t.Context(), "svc.echo", []byte("ok")); err != nil || string(resp.Data) != "ok" {
		t.Errorf("request to b = %v, %v", resp, err)
	}
}

// TestProcessStuckSubscriber floods a subscriber whose process is stopped
// (it never reads its socket): the server's memory stays bounded by
// MaxPending, it drops and counts the excess, and another client's
// requests go on. The figures are logged, not asserted, except the bound.
func TestProcessStuckSubscriber(t *testing.T) {
	const maxPending = 1 << 20
	const msgSize = 16 << 10
	const floodN = 1024 // 16 MiB, 16× MaxPending
	cl := newCluster(t, "unix", childConfig{MaxPending: maxPending, Heartbeat: -1})
	// The stuck client pings often, so that its pause is always longer
	// than three of its heartbeats: once resumed it must not mistake its
	// own pause for a dead server.
	cl.client.Heartbeat = 250 * time.Millisecond
	stuck := cl.startClient(t, "stuck")
	cl.client.Heartbeat = 0
	pub := cl.startClient(t, "publisher")
	responder := cl.startClient(t, "responder")
	responder.must(command{Op: "handle", Subject: "svc.echo", Mode: "echo"})
	me := cl.dial(t)
	stuck.must(command{Op: "sub", Subject: "flood.>", Tag: "flood"})

	heap0 := cl.srv.must(command{Op: "mem"}).Heap
	rss0, _ := cl.srv.rss()
	const reqs = 1000
	lat0 := latency(t, me, reqs)

	stuck.signal(syscall.SIGSTOP)
	defer stuck.signal(syscall.SIGCONT)
	pub.must(command{Op: "pub", Subject: "flood.x", Size: msgSize, N: floodN})
	// The publisher's flush came back: the server has routed the flood.
	e := cl.srv.must(command{Op: "stats"})
	var info ipc.ClientInfo
	for _, c := range e.Clients {
		if c.Name == "stuck" {
			info = c
		}
	}
	if e.Stats.SlowDrops == 0 || info.Dropped == 0 {
		t.Errorf("server dropped %d messages (%d for the stuck client), want some", e.Stats.SlowDrops, info.Dropped)
	}
	if info.Pending > maxPending {
		t.Errorf("%d bytes queued for the stuck client, MaxPending is %d", info.Pending, maxPending)
	}
	heap1 := cl.srv.must(command{Op: "mem"}).Heap
	rss1, _ := cl.srv.rss()
	lat1 := latency(t, me, reqs)

	// And while a flood is going on.
	flood := pub.start(command{Op: "pub", Subject: "flood.x", Size: msgSize, N: floodN})
	lat2 := latency(t, me, reqs)
	if e := <-flood; e.Err != "" {
		t.Fatal(e.Err)
	}
	heap2 := cl.srv.must(command{Op: "mem"}).Heap
	rss2, hwm := cl.srv.rss()
	load, _ := os.ReadFile("/proc/loadavg")

	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	t.Logf("server with a stuck subscriber, MaxPending %s, 2 floods of %s each:", mib(maxPending), mib(floodN*msgSize))
	t.Logf("  Go heap in use: %s before, %s after the first flood, %s after the second", mib(int64(heap0)), mib(int64(heap1)), mib(int64(heap2)))
	t.Logf("  RSS: %s before, %s after the first flood, %s after the second; peak %s", mib(rss0), mib(rss1), mib(rss2), mib(hwm))
	t.Logf("  queued for the stuck client: %s; dropped for it: %d messages", mib(int64(info.Pending)), info.Dropped)
	t.Logf("another client's request latency (p50 / p99 over %d requests):", reqs)
	t.Logf("  no stuck subscriber:         %v / %v", lat0[0], lat0[1])
	t.Logf("  stuck subscriber, its queue full: %v / %v", lat1[0], lat1[1])
	t.Logf("  stuck subscriber during a flood:  %v / %v", lat2[0], lat2[1])
	t.Logf("  load average: %s", strings.TrimSpace(string(load)))
	// The bound: the server held on to far less than the flood.
	for _, h := range []uint64{heap1, heap2} {
		if grew := int64(h) - int64(heap0); grew > 4*maxPending {
			t.Errorf("the server's heap grew by %s with a stuck subscriber; MaxPending is %s", mib(grew), mib(maxPending))
		}
	}

	// Once it reads again, the subscriber learns of the drops: with the
	// next message routed to it once its queue has room. The request's
	// answer comes after everything queued for it.
	stuck.signal(syscall.SIGCONT)
	stuck.must(command{Op: "req", Subject: "svc.echo", Data: "drained"})
	pub.must(command{Op: "pub", Subject: "flood.x", Data: "after"})
	if e := stuck.await("error"); !e.is("ErrSlowConsumer") {
		t.Errorf("the stuck subscriber was told %q, want ErrSlowConsumer", e.Err)
	}
}

// TestProcessPaused stops a process for longer than three heartbeats
// while nothing else happens, then resumes it: it must not mistake the
// silence it caused itself for a dead peer. The server's pings (or the
// client's) wait unread in its socket, or were never sent.
func TestProcessPaused(t *testing.T) {
	// Long enough that a loaded machine (every package tested at once,
	// under -race) does not stall a process for 3 of them.
	const hb = 250 * time.Millisecond
	for _, who := range []string{"server", "client"} {
		t.Run(who, func(t *testing.T) {
			srvHB, clientHB := hb, time.Duration(-1) // only the paused side pings
			if who == "client" {
				srvHB, clientHB = -1, hb
			}
			cl := newCluster(t, "unix", childConfig{Heartbeat: srvHB})
			cl.client.Heartbeat = clientHB
			a := cl.startClient(t, "a")
			a.awaitState(ipc.StateConnected)
			a.must(command{Op: "handle", Subject: "svc.echo", Mode: "echo"})
			paused := cl.srv
			if who == "client" {
				paused = a
			}
			paused.signal(syscall.SIGSTOP)
			time.Sleep(4 * hb) // the pause under test, not a synchronisation
			paused.signal(syscall.SIGCONT)
			// Keep the connection busy until the paused side has checked
			// the silence (due at once) and once more after its grace.
			e := a.must(command{Op: "reqloop", Subject: "svc.echo", Timeout: 3 * hb})
			t.Logf("%d requests after the pause", e.N)
			if gone := cl.srv.pending("client-gone"); len(gone) > 0 {
				t.Errorf("the server dropped %s: %s", gone[0].Subject, gone[0].Err)
			}
			for _, st := range a.pending("state") {
				t.Errorf("client a went %s: %s", st.Data, st.Err)
			}
		})
	}
}

// TestMaxConnections: a client over the server's limit is told why.
func TestMaxConnections(t *testing.T) {
	gone := make(chan ipc.ClientInfo, 1)
	s := newServer(t, ipc.MaxConnections(2), ipc.OnDisconnect(func(ci ipc.ClientInfo, _ error) {
		select {
		case gone <- ci:
		default:
		}
	}))
	a, _ := dial(t, s), dial(t, s)
	_, err := ipc.Dial(t.Context(), s.Addr(), ipc.NoReconnect())
	if !errors.Is(err, ipc.ErrMaxConnections) {
		t.Fatalf("third connection = %v, want ErrMaxConnections", err)
	}
	t.Logf("third connection: %v", err)
	a.Close()
	recv(t, gone, "the server to see the client go")
	c, err := ipc.Dial(t.Context(), s.Addr())
	if err != nil {
		t.Fatalf("connection after one left: %v", err)
	}
	defer c.Close()
	if n := s.Stats().Connections; n != 2 {
		t.Errorf("Stats().Connections = %d, want 2", n)
	}
	if n := len(s.Clients()); n != 2 {
		t.Errorf("len(Clients()) = %d, want 2", n)
	}
}

// latency returns the p50 and p99 of n requests to svc.echo.
func latency(t *testing.T, c *ipc.Conn, n int) [2]time.Duration {
	t.Helper()
	d := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		if _, err := c.Request(t.Context(), "svc.echo", []byte("ping")); err != nil {
			t.Fatal(err)
		}
		d[i] = time.Since(start)
	}
	slices.Sort(d)
	return [2]time.Duration{d[n/2].Round(time.Microsecond), d[n*99/100].Round(time.Microsecond)}
}

// TestProcessShutdown: Server.Shutdown lets a request in flight finish,
// refuses new requests and connections meanwhile, then closes.
func TestProcessShutdown(t *testing.T) {
	cl := newCluster(t, "unix", childConfig{})
	a := cl.startClient(t, "a")
	a.must(command{Op: "handle", Subject: "svc.hold", Mode: "hold", Tag: "hold"})
	a.must(command{Op: "handle", Subject: "svc.echo", Mode: "echo"})
	onState, states := watchStates()
	me := cl.dial(t, onState)
	inflight := make(chan error, 1)
	go func() {
		resp, err := me.Request(t.Context(), "svc.hold", []byte("1"))
		if err == nil && string(resp.Data) != "done" {
			err = fmt.Errorf("answer %q", resp.Data)
		}
		inflight <- err
	}()
	a.await("hold-got")

	shutdown := cl.srv.start(command{Op: "shutdown"})
	// Requests made once the shutdown began are refused.
	var before int
	for {
		_, err := me.Request(t.Context(), "svc.echo", []byte("new"))
		if errors.Is(err, ipc.ErrServerShutdown) {
			t.Logf("new request during the shutdown: %v (%d answered before it began)", err, before)
			break
		}
		if err != nil {
			t.Fatalf("a new request during the shutdown = %v, want ErrServerShutdown", err)
		}
		before++
	}
	// So are new connections: refused, with the reason if the listener
	// is still open.
	if c, err := ipc.Dial(t.Context(), cl.addr, ipc.NoReconnect()); err == nil {
		c.Close()
		t.Error("a new connection during the shutdown was accepted")
	} else if !errors.Is(err, ipc.ErrServerShutdown) && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ECONNREFUSED) &&
		!errors.Is(err, syscall.ECONNRESET) { // still in the listener's backlog when it closed
		t.Errorf("a new connection during the shutdown: %v, want ErrServerShutdown or no listener", err)
	} else {
		t.Logf("new connection during the shutdown: %v", err)
	}
	select {
	case err := <-inflight:
		t.Fatalf("the request in flight ended before its handler finished: %v", err)
	default:
	}
	a.must(command{Op: "release"})
	if err := recv(t, inflight, "the request in flight"); err != nil {
		t.Errorf("the request in flight: %v", err)
	}
	if e := <-shutdown; e.Err != "" {
		t.Errorf("Shutdown: %s", e.Err)
	}
	awaitState(t, states, ipc.StateDisconnected)
}

// TestPublishWhileDisconnected: a responder that answers, and a requester
// that asks, while the connection is down neither crash nor wait: the
// answer is kept for the reconnect like any publish, the request fails
// with ErrConnectionLost.
func TestPublishWhileDisconnected(t *testing.T) {
	s := newServer(t)
	onState, states := watchStates()
	responder := dial(t, s, onState, ipc.Reconnect(time.Hour, time.Hour, 0, 0))
	got := make(chan *ipc.Msg, 1)
	if _, err := responder.Subscribe("svc.late", func(m *ipc.Msg) { got <- m }); err != nil {
		t.Fatal(err)
	}
	if err := responder.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	requester := dial(t, s, ipc.NoReconnect())
	go requester.Request(t.Context(), "svc.late", nil) // fails when the server closes
	m := recv(t, got, "the request")
	s.Close()
	awaitState(t, states, ipc.StateDisconnected)
	if err := m.Respond([]byte("late")); err != nil {
		t.Errorf("Respond while disconnected = %v, want nil (kept for the reconnect)", err)
	}
	if _, err := responder.Request(t.Context(), "svc.any", nil); !errors.Is(err, ipc.ErrConnectionLost) {
		t.Errorf("Request while disconnected = %v, want ErrConnectionLost", err)
	}
}

// TestCloseAfterGivingUp: a connection that closed by itself (NoReconnect,
// or MaxReconnects used up) still closes cleanly: Close returns and its
// goroutines end (goleak checks them).
func TestCloseAfterGivingUp(t *testing.T) {
	for _, opt := range []struct {
		name string
		opt  ipc.Option
	}{
		{"no-reconnect", ipc.NoReconnect()},
		{"max-reconnects", ipc.Reconnect(time.Millisecond, time.Millisecond, 0, 1)},
	} {
		t.Run(opt.name, func(t *testing.T) {
			s := newServer(t)
			onState, states := watchStates()
			c, err := ipc.Dial(t.Context(), s.Addr(), opt.opt, onState)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			st := awaitState(t, states, ipc.StateClosed)
			t.Logf("closed by itself: %v", st.err)
			closed := make(chan error, 1)
			go func() { closed <- c.Close() }()
			if err := recv(t, closed, "Close to return"); err != nil {
				t.Errorf("Close = %v", err)
			}
		})
	}
}

// deliverHook is an Observer that calls fn for each delivered message (on
// the connection's reading goroutine, before the subscription queues it).
type deliverHook struct{ fn func(*observe.Call) }

func (h deliverHook) CallStart(ctx context.Context, c *observe.Call) context.Context {
	if c.Side == observe.Server {
		h.fn(c)
	}
	return ctx
}
func (h deliverHook) CallEnd(context.Context, *observe.Call) {}
func (h deliverHook) Child(observe.ChildEvent)               {}

// TestQueuedRequestCancelled: a request waiting behind a busy handler of
// an ordered subscription, whose requester gives up or dies meanwhile, has
// a cancelled context when its turn comes.
func TestQueuedRequestCancelled(t *testing.T) {
	for _, how := range []string{"cancelled", "killed"} {
		t.Run(how, func(t *testing.T) {
			gone := make(chan string, 4)
			s := newServer(t, ipc.OnDisconnect(func(ci ipc.ClientInfo, _ error) {
				select {
				case gone <- ci.Name:
				default:
				}
			}))
			queued := make(chan struct{}, 1)
			responder := dial(t, s, ipc.WithObserver(deliverHook{func(c *observe.Call) {
				if c.BytesIn == int64(len("second")) { // "first" is a byte shorter
					queued <- struct{}{}
				}
			}}))
			release := make(chan struct{})
			type ctxState struct{ err, cause error }
			ctxs := make(chan ctxState, 2)
			if _, err := responder.Subscribe("svc.one", func(m *ipc.Msg) {
				ctx := m.Context()
				ctxs <- ctxState{ctx.Err(), ipc.Cause(ctx)} // as the handler finds it when its turn comes
				if string(m.Data) == "first" {
					<-release
				}
				m.Respond(nil)
			}); err != nil {
				t.Fatal(err)
			}
			if err := responder.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			me := dial(t, s)
			go me.Request(t.Context(), "svc.one", []byte("first"))
			recv(t, ctxs, "the first request")
			switch how {
			case "cancelled":
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() {
					_, err := me.Request(ctx, "svc.one", []byte("second"))
					done <- err
				}()
				recv(t, queued, "the second request to be queued")
				cancel()
				recv(t, done, "the cancelled request")
				if err := me.Flush(t.Context()); err != nil { // the server has the cancellation…
					t.Fatal(err)
				}
			case "killed":
				requester := startProc(t, "requester", childConfig{Role: "client", Addr: s.Addr(), Name: "requester"}, false)
				requester.start(command{Op: "req", Subject: "svc.one", Data: "second"})
				recv(t, queued, "the second request to be queued")
				requester.kill()
				for recv(t, gone, "the server to see the requester die") != "requester" {
				}
			}
			if err := responder.Flush(t.Context()); err != nil { // …and the responder has it too
				t.Fatal(err)
			}
			close(release)
			st := recv(t, ctxs, "the second request's turn")
			if st.err == nil {
				t.Fatal("the queued request's context is live after its requester gave up")
			}
			t.Logf("queued request's context: %v (cause: %v)", st.err, st.cause)
		})
	}
}

// TestRequestsSettled: every answered request leaves the server's table of
// requests in flight, however fast its responder answers — a client whose
// answer can overtake the routing of the request (several requesters
// share its connection's output), or the server's own endpoint, which gets
// requests synchronously — so that Shutdown finds nothing to wait for.
func TestRequestsSettled(t *testing.T) {
	s := newServer(t)
	if _, err := s.Conn().Subscribe("svc.endpoint", func(m *ipc.Msg) { m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	responder := dial(t, s)
	if _, err := responder.Subscribe("svc.client", func(m *ipc.Msg) { m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	if err := responder.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	const requesters, each = 4, 1000
	errs := make(chan error, 2*requesters)
	var wg sync.WaitGroup
	for i := range 2 * requesters {
		subject := []string{"svc.client", "svc.endpoint"}[i%2]
		c := dial(t, s)
		wg.Go(func() {
			for range each {
				if _, err := c.Request(t.Context(), subject, []byte("x")); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := s.Stats().RequestsInFlight; n != 0 {
		t.Fatalf("RequestsInFlight = %d after every request was answered: Shutdown would wait for them", n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with nothing in flight = %v", err)
	}
}
