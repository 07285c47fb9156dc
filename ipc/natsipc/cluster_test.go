package natsipc_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/natsipc"
)

// startCluster starts an n-node nats-server cluster, routes on 127.0.0.1,
// and waits until every node routes to every other.
func startCluster(t *testing.T, n int) []*natsipc.Server {
	t.Helper()
	nodes := make([]*natsipc.Server, n)
	for i := range n {
		o := natsipc.ServerOptions{Name: fmt.Sprintf("n%d", i), Cluster: natsipc.ClusterOptions{Name: "ipc"}}
		if i > 0 {
			o.Cluster.Routes = []string{nodes[0].RouteURL()}
		}
		nodes[i] = startServer(t, o)
	}
	waitFor(t, "the cluster to form", func() bool {
		for _, s := range nodes {
			if s.NATS().NumRemotes() < n-1 {
				return false
			}
		}
		return true
	})
	return nodes
}

// waitFor polls cond until it holds. It is for states nats-server and
// nats.go announce to nobody (routes formed, servers discovered).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// clusterMember is a connection attached to one node of the cluster.
type clusterMember struct {
	name        string
	c           *ipc.Conn
	home        string        // the URL of the node it first connected to
	reconnected chan struct{} // closed at its first reconnection
	served      atomic.Int64  // requests it served after reconnecting
}

func joinCluster(t *testing.T, name string, node *natsipc.Server, opts ...ipc.Option) *clusterMember {
	t.Helper()
	m := &clusterMember{name: name, home: node.URL(), reconnected: make(chan struct{})}
	var once sync.Once
	opts = append(opts, ipc.OnState(func(s ipc.State, err error) {
		if s == ipc.StateReconnected {
			once.Do(func() { close(m.reconnected) })
		}
	}), ipc.Reconnect(20*time.Millisecond, 200*time.Millisecond, 0.2, 0))
	c, err := natsipc.Connect(t.Context(), node.URL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m.c = c
	// nats.go learns the other nodes from the server it is connected to:
	// the pool it fails over to.
	waitFor(t, name+" to discover the cluster", func() bool { return len(natsipc.NATS(c).Servers()) >= 3 })
	return m
}

// outcome counts the results of one kind of request.
type outcome struct {
	ok, crossNode                       atomic.Int64
	lost, gone, noResp, deadline, other atomic.Int64
	firstOther                          atomic.Value
}

func (o *outcome) record(err error) {
	switch {
	case err == nil:
		o.ok.Add(1)
	case errors.Is(err, ipc.ErrConnectionLost):
		o.lost.Add(1)
	case errors.Is(err, ipc.ErrResponderGone):
		o.gone.Add(1)
	case errors.Is(err, ipc.ErrNoResponders):
		o.noResp.Add(1)
	case errors.Is(err, context.DeadlineExceeded):
		o.deadline.Add(1)
	default:
		o.other.Add(1)
		o.firstOther.CompareAndSwap(nil, err.Error())
	}
}

func (o *outcome) failed() int64 {
	return o.lost.Load() + o.gone.Load() + o.noResp.Load() + o.deadline.Load() + o.other.Load()
}

func (o *outcome) String() string {
	return fmt.Sprintf("%d ok (%d answered by a worker on another node), %d failed: %d connection lost, %d responder gone, %d no responders, %d deadline, %d other",
		o.ok.Load(), o.crossNode.Load(), o.failed(), o.lost.Load(), o.gone.Load(), o.noResp.Load(), o.deadline.Load(), o.other.Load())
}

// TestClusterFailover runs requests to a queue group whose members are
// attached to different nodes of a three-node cluster, and shuts one node
// down mid-load: the connections on it fail over to the other nodes,
// requests marked idempotent all succeed, the others succeed or fail with
// an error saying why, and none hangs.
func TestClusterFailover(t *testing.T) {
	nodes := startCluster(t, 3)
	const victim = 1

	// Workers: two on the node that goes down, one on each other node.
	workerNodes := []int{0, victim, victim, 2}
	workers := make([]*clusterMember, len(workerNodes))
	var afterShutdown atomic.Bool
	for i, n := range workerNodes {
		w := joinCluster(t, fmt.Sprintf("worker%d@n%d", i, n), nodes[n])
		workers[i] = w
		_, err := ipc.Handle(w.c, "work", func(ctx context.Context, x int) (string, error) {
			if afterShutdown.Load() {
				w.served.Add(1)
			}
			return w.c.Info().Server, nil // the node that served it
		}, ipc.Queue("workers"))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.c.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// Requesters, one on each node. Idempotent requests are retried
	// (with backoff) for as long as their deadline allows.
	retry := ipc.WithRetry(ipc.RetryPolicy{Attempts: 100, Backoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	requesters := make([]*clusterMember, len(nodes))
	for i := range nodes {
		requesters[i] = joinCluster(t, fmt.Sprintf("requester@n%d", i), nodes[i], retry)
	}
	// Interest in the queue group has reached every node.
	for _, r := range requesters {
		if _, err := ipc.Call[string](t.Context(), r.c, "work", 0, ipc.Idempotent()); err != nil {
			t.Fatal(err)
		}
	}

	var idem, plain outcome
	var total atomic.Int64
	stop := make(chan struct{})
	halfway := make(chan struct{})
	var halfOnce sync.Once
	const before, after = 300, 300
	var wg sync.WaitGroup
	for _, r := range requesters {
		for g := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					o, opts := &plain, []ipc.RequestOption{ipc.Keepalive(100 * time.Millisecond)}
					if (i+g)%2 == 0 {
						o, opts = &idem, append(opts, ipc.Idempotent())
					}
					from := r.c.Info().Server
					ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
					by, err := ipc.Call[string](ctx, r.c, "work", i, opts...)
					cancel()
					o.record(err)
					if err == nil && by != from {
						o.crossNode.Add(1)
					}
					if total.Add(1) == before {
						halfOnce.Do(func() { close(halfway) })
					}
				}
			})
		}
	}
	<-halfway
	afterShutdown.Store(true)
	atShutdown := total.Load()
	if err := nodes[victim].Close(); err != nil {
		t.Fatal(err)
	}
	// Everyone who was on the node fails over; the workers that were on
	// it serve again; the load goes on.
	moved := []*clusterMember{workers[1], workers[2], requesters[victim]}
	for _, m := range moved {
		<-m.reconnected
		if now := m.c.Info().Server; now == m.home {
			t.Errorf("%s reconnected to %s, the node that went down", m.name, now)
		}
	}
	waitFor(t, "the moved workers to serve again", func() bool {
		return workers[1].served.Load()+workers[2].served.Load() > 0 && total.Load() >= atShutdown+after
	})
	close(stop)
	wg.Wait() // no request hung: each returned

	t.Logf("idempotent requests: %v", &idem)
	t.Logf("other requests: %v", &plain)
	var attemptsFailed uint64
	for _, r := range requesters {
		attemptsFailed += r.c.Stats().RequestErrors
	}
	t.Logf("idempotent attempts that failed and were retried: %d", int64(attemptsFailed)-plain.failed())
	t.Logf("requests after the shutdown: %d; served by the workers that moved: %d", total.Load()-atShutdown, workers[1].served.Load()+workers[2].served.Load())
	if n := idem.failed(); n != 0 {
		t.Errorf("%d idempotent requests failed: %v (first unexpected error: %v)", n, &idem, idem.firstOther.Load())
	}
	if n := plain.deadline.Load() + plain.other.Load(); n != 0 {
		t.Errorf("%d requests failed without a clear error: %v (first: %v)", n, &plain, plain.firstOther.Load())
	}
	if idem.crossNode.Load()+plain.crossNode.Load() == 0 {
		t.Error("no request was answered by a worker on another node")
	}
}
