// Package ipcbench measures package ipc against a raw-socket floor and
// NATS (nats-server and nats.go), every party a separate process: the hub,
// the responders and the subscribers are this binary re-executed in a
// role; the measuring process is the publisher or requester.
package ipcbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/procxy/procxy/ipc"
)

// EnvRole names the role a re-executed binary plays.
const EnvRole = "IPCBENCH_ROLE"

// Subjects the roles use.
const (
	subjEcho = "bench.echo" // requests: answered with their data
	subjPub  = "bench.pub"  // pub/sub: bench.pub.data, then bench.pub.end, on which subscribers report
)

// MaybeChild returns at once in the measuring process; in a child it plays
// its role until its stdin closes, then exits.
func MaybeChild() {
	role := os.Getenv(EnvRole)
	if role == "" {
		return
	}
	args := strings.Fields(os.Getenv(EnvRole + "_ARGS"))
	err := play(role, args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ipcbench %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// untilStdinCloses blocks until the parent goes away.
func untilStdinCloses() { io.Copy(io.Discard, os.Stdin) }

func ready(info string) { fmt.Printf("READY %s\n", info) }

func play(role string, args []string) error {
	ctx := context.Background()
	switch role {
	case "ipc-hub": // args: addr [echo]
		// No log: the hub is measured as a server that logs nothing per
		// connection (nats-server's default).
		srv, err := ipc.Listen(ctx, args[0], ipc.Heartbeat(-1), ipc.Logger(slog.New(slog.DiscardHandler)))
		if err != nil {
			return err
		}
		if len(args) > 1 && args[1] == "echo" {
			if _, err := srv.Conn().Subscribe(subjEcho, func(m *ipc.Msg) { m.Respond(m.Data) }); err != nil {
				return err
			}
		}
		ready(srv.Addr())
		untilStdinCloses()
		return srv.Close()
	case "ipc-responder": // args: addr [queue]
		c, err := ipc.Dial(ctx, args[0], ipc.Heartbeat(-1))
		if err != nil {
			return err
		}
		queue := ""
		if len(args) > 1 {
			queue = args[1]
		}
		if _, err := c.QueueSubscribe(subjEcho, queue, func(m *ipc.Msg) { m.Respond(m.Data) }); err != nil {
			return err
		}
		if err := c.Flush(ctx); err != nil {
			return err
		}
		ready("")
		untilStdinCloses()
		return c.Close()
	case "ipc-sub": // args: addr
		c, err := ipc.Dial(ctx, args[0], ipc.Heartbeat(-1), ipc.PendingLimits(1<<20, 1<<30))
		if err != nil {
			return err
		}
		var n, last int64 // one subscription: the end comes after the data
		c.Subscribe(subjPub+".>", func(m *ipc.Msg) {
			if m.Subject == subjPub+".end" {
				report(n, last)
				n = 0
				return
			}
			n++
			last = time.Now().UnixNano()
		})
		if err := c.Flush(ctx); err != nil {
			return err
		}
		ready("")
		untilStdinCloses()
		return c.Close()
	case "nats-server":
		opts := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, MaxPayload: 8 << 20}
		s, err := natsserver.NewServer(opts)
		if err != nil {
			return err
		}
		go s.Start()
		if !s.ReadyForConnections(10 * time.Second) {
			return errors.New("nats-server did not start")
		}
		ready(s.ClientURL())
		untilStdinCloses()
		s.Shutdown()
		return nil
	case "nats-responder": // args: url [queue]
		nc, err := nats.Connect(args[0])
		if err != nil {
			return err
		}
		queue := ""
		if len(args) > 1 {
			queue = args[1]
		}
		if _, err := nc.QueueSubscribe(subjEcho, queue, func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
			return err
		}
		if err := nc.Flush(); err != nil {
			return err
		}
		ready("")
		untilStdinCloses()
		nc.Close()
		return nil
	case "nats-sub": // args: url
		nc, err := nats.Connect(args[0])
		if err != nil {
			return err
		}
		var n, last int64
		s, _ := nc.Subscribe(subjPub+".>", func(m *nats.Msg) {
			if m.Subject == subjPub+".end" {
				report(n, last)
				n = 0
				return
			}
			n++
			last = time.Now().UnixNano()
		})
		s.SetPendingLimits(1<<20, 1<<30)
		if err := nc.Flush(); err != nil {
			return err
		}
		ready("")
		untilStdinCloses()
		nc.Close()
		return nil
	}
	if ok, err := playFleet(role, args); ok {
		return err
	}
	return fmt.Errorf("unknown role %q", role)
}

// report tells the parent how many messages arrived and when the last did.
func report(n, lastNanos int64) { fmt.Printf("GOT %d %d\n", n, lastNanos) }

// child is a running role.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	info  string
}

// spawn starts this binary in role with args and waits for it to be ready.
func spawn(role string, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), EnvRole+"="+role, EnvRole+"_ARGS="+strings.Join(args, " "))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() { // ends when the child's stdout closes
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	select {
	case line, ok := <-c.lines:
		if !ok || !strings.HasPrefix(line, "READY") {
			c.close()
			return nil, fmt.Errorf("%s did not start (%q)", role, line)
		}
		c.info = strings.TrimSpace(strings.TrimPrefix(line, "READY"))
	case <-time.After(20 * time.Second):
		c.close()
		return nil, fmt.Errorf("%s did not start in 20 s", role)
	}
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// got waits for a subscriber's report.
func (c *child) got(timeout time.Duration) (n int64, last time.Time, err error) {
	select {
	case line, ok := <-c.lines:
		if !ok {
			return 0, time.Time{}, errors.New("subscriber exited")
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "GOT" {
			return 0, time.Time{}, fmt.Errorf("subscriber said %q", line)
		}
		n, _ = strconv.ParseInt(f[1], 10, 64)
		ns, _ := strconv.ParseInt(f[2], 10, 64)
		return n, time.Unix(0, ns), nil
	case <-time.After(timeout):
		return 0, time.Time{}, errors.New("no report from a subscriber")
	}
}

func (c *child) close() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// rss returns a process's resident set in bytes (Linux).
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}
