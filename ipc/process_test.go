//go:build linux

package ipc_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/procxy/procxy/ipc"
)

// cluster is a server process and the addresses and options its clients use.
type cluster struct {
	srv      *proc
	addr     string
	client   childConfig  // the base config of client processes
	testOpts []ipc.Option // options of the test process's own connections
}

// newCluster starts a server process on a Unix socket ("unix") or TLS over
// TCP ("tls"); base adds to the server's config.
func newCluster(t *testing.T, network string, base childConfig) *cluster {
	t.Helper()
	cl := &cluster{}
	base.Role = "server"
	switch network {
	case "unix":
		dir, err := shortDir(t)
		if err != nil {
			t.Fatal(err)
		}
		base.Addr = filepath.Join(dir, "s.sock")
	case "tls":
		p := newPKI(t, "cluster")
		base.Addr = "tls://127.0.0.1:0"
		base.Cert, base.Key = p.server.certFile, p.server.keyFile
		cl.client.CA = p.caFile
		cl.testOpts = append(cl.testOpts, ipc.TLS(p.clientTLS(nil)))
	default:
		t.Fatalf("network %q", network)
	}
	cl.srv = startProc(t, "server", base, false)
	cl.addr = cl.srv.ready.Addr
	cl.client.Role, cl.client.Addr = "client", cl.addr
	return cl
}

// startClient starts a client process named name.
func (cl *cluster) startClient(t *testing.T, name string) *proc {
	t.Helper()
	cfg := cl.client
	cfg.Name = name
	return startProc(t, name, cfg, false)
}

// dial connects the test process itself.
func (cl *cluster) dial(t *testing.T, opts ...ipc.Option) *ipc.Conn {
	t.Helper()
	c, err := ipc.Dial(t.Context(), cl.addr, append(append([]ipc.Option(nil), cl.testOpts...), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestProcessPatterns runs every messaging pattern between real processes
// — a server, two client processes and the test process — over a Unix
// socket and over TLS.
func TestProcessPatterns(t *testing.T) {
	for _, network := range []string{"unix", "tls"} {
		t.Run(network, func(t *testing.T) {
			cl := newCluster(t, network, childConfig{})
			a, b := cl.startClient(t, "a"), cl.startClient(t, "b")
			broadcasts := make(chan *ipc.Msg, 1)
			me := cl.dial(t, ipc.Name("test"), ipc.OnBroadcast(func(m *ipc.Msg) { broadcasts <- m }))

			t.Run("request-reply", func(t *testing.T) {
				b.must(command{Op: "handle", Subject: "svc.echo", Mode: "echo"})
				if e := a.must(command{Op: "req", Subject: "svc.echo", Data: "from a"}); e.Data != "from a" {
					t.Errorf("a's request to b answered %q", e.Data)
				}
				resp, err := me.Request(t.Context(), "svc.echo", []byte("from the test"))
				if err != nil || string(resp.Data) != "from the test" {
					t.Errorf("the test's request to b = %v, %v", resp, err)
				}
				if e := a.do(command{Op: "req", Subject: "svc.nobody"}); !e.is("ErrNoResponders") {
					t.Errorf("request to nobody = %q, want ErrNoResponders", e.Err)
				}
			})

			t.Run("fan-out", func(t *testing.T) {
				a.must(command{Op: "sub", Subject: "news.>", Tag: "news"})
				b.must(command{Op: "sub", Subject: "news.*", Tag: "news"})
				const n = 100
				for i := range n {
					if err := me.Publish("news.test", []byte(strconv.Itoa(i))); err != nil {
						t.Fatal(err)
					}
				}
				b.must(command{Op: "pub", Subject: "news.b", Data: "b", N: n})
				for _, p := range []*proc{a, b} {
					var fromTest, fromB int
					for range 2 * n {
						e := p.await("news")
						switch e.Subject {
						case "news.test":
							if e.Data != strconv.Itoa(fromTest) {
								t.Fatalf("%s got news.test %q, want %d: out of order", p.name, e.Data, fromTest)
							}
							fromTest++
						case "news.b":
							if e.Data != "b"+strconv.Itoa(fromB) {
								t.Fatalf("%s got news.b %q, want b%d: out of order", p.name, e.Data, fromB)
							}
							fromB++
						}
					}
				}
			})

			t.Run("queue-group", func(t *testing.T) {
				a.must(command{Op: "sub", Subject: "jobs", Queue: "workers", Tag: "job"})
				b.must(command{Op: "sub", Subject: "jobs", Queue: "workers", Tag: "job"})
				const n = 200
				for i := range n {
					if err := me.Publish("jobs", []byte(strconv.Itoa(i))); err != nil {
						t.Fatal(err)
					}
				}
				got := awaitTotal(t, "job", n, a, b)
				seen := make(map[string]string)
				for i, p := range []*proc{a, b} {
					for _, e := range got[i] {
						if other, dup := seen[e.Data]; dup {
							t.Errorf("job %s went to %s and %s", e.Data, other, p.name)
						}
						seen[e.Data] = p.name
					}
				}
				if len(seen) != n || len(got[0]) == 0 || len(got[1]) == 0 {
					t.Errorf("%d distinct jobs of %d; a took %d, b %d", len(seen), n, len(got[0]), len(got[1]))
				}
				t.Logf("queue group: a took %d, b %d of %d", len(got[0]), len(got[1]), n)
			})

			t.Run("broadcast", func(t *testing.T) {
				cl.srv.must(command{Op: "broadcast", Subject: "alert.fire", Data: "evacuate"})
				for _, p := range []*proc{a, b} {
					if e := p.await("broadcast"); e.Subject != "alert.fire" || e.Data != "evacuate" {
						t.Errorf("%s got broadcast %s %q", p.name, e.Subject, e.Data)
					}
				}
				if m := recv(t, broadcasts, "the broadcast"); m.Subject != "alert.fire" || string(m.Data) != "evacuate" {
					t.Errorf("the test got broadcast %s %q", m.Subject, m.Data)
				}
			})

			t.Run("channel", func(t *testing.T) {
				b.must(command{Op: "listen", Subject: "chat"})
				a.must(command{Op: "open", Subject: "chat"})
				b.await("chan-accepted")
				for i := range 20 {
					v := fmt.Sprint("line ", i)
					a.must(command{Op: "send", Data: v})
					if e := a.must(command{Op: "recv"}); e.Data != "echo:"+v {
						t.Fatalf("channel answered %q, want %q", e.Data, "echo:"+v)
					}
				}
				a.must(command{Op: "close-chan"})
				if e := b.await("chan-closed"); !e.is("ErrChannelClosed") || !strings.Contains(e.Err, "closed by the other end") {
					t.Errorf("b's end after a closed the channel: %q, want ErrChannelClosed saying the other end closed it", e.Err)
				}
				// The other way to end: the opener's process dies.
				b.must(command{Op: "listen", Subject: "chat"})
				a.must(command{Op: "open", Subject: "chat"})
				b.await("chan-accepted")
				a.kill()
				e := b.await("chan-closed")
				if !e.is("ErrChannelClosed") || !strings.Contains(e.Err, "went away") {
					t.Errorf("b's end after a's process died: %q, want ErrChannelClosed saying the other end went away", e.Err)
				}
				t.Logf("acceptor's end after the opener was killed: %s", e.Err)
				// And the acceptor's process dies.
				c, d := cl.startClient(t, "c"), cl.startClient(t, "d")
				d.must(command{Op: "listen", Subject: "chat2"})
				c.must(command{Op: "open", Subject: "chat2"})
				d.await("chan-accepted")
				recvd := c.start(command{Op: "recv"})
				d.kill()
				if e := <-recvd; !e.is("ErrChannelClosed") || !strings.Contains(e.Err, "went away") {
					t.Errorf("opener's Recv after the acceptor died: %q, want ErrChannelClosed saying the other end went away", e.Err)
				} else {
					t.Logf("opener's end after the acceptor was killed: %s", e.Err)
				}
				if e := c.do(command{Op: "send", Data: "anyone?"}); !e.is("ErrChannelClosed") {
					t.Errorf("opener's Send after the acceptor died: %q, want ErrChannelClosed", e.Err)
				}
			})

			st := cl.srv.must(command{Op: "stats"}).Stats
			t.Logf("server: %d clients, %d msgs in, %d out, %d slow drops", st.Connections, st.InMsgs, st.OutMsgs, st.SlowDrops)
			if st.SlowDrops != 0 {
				t.Errorf("server dropped %d messages", st.SlowDrops)
			}
			if errs := append(a.pending("error"), b.pending("error")...); len(errs) > 0 {
				t.Errorf("asynchronous errors in the clients: %v", errs)
			}
		})
	}
}
