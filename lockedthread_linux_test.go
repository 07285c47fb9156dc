package procxy_test

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/procxy/procxy"
)

// TestLockedThreadChild: a child started from a goroutine locked to its OS
// thread outlives that thread (Linux sends the parent-death signal when the
// forking thread ends). That it still dies with the parent process is
// childproc's TestPdeathsigLockedThread.
func TestLockedThreadChild(t *testing.T) {
	type started struct {
		p      *procxy.Proxy[Calculator]
		thread int // a pidfd of the goroutine's thread
		err    error
	}
	res := make(chan started)
	mainThread := make(chan struct{}) // closed at the end to let a goroutine off the main thread
	defer close(mainThread)
	start := func() {
		runtime.LockOSThread() // never unlocked here: the thread ends with the goroutine
		if unix.Gettid() == unix.Getpid() {
			// Go never ends the main thread: hold it, so that the next try
			// gets another, and give it back at the end.
			res <- started{}
			<-mainThread
			runtime.UnlockOSThread()
			return
		}
		tfd, err := unix.PidfdOpen(unix.Gettid(), unix.O_EXCL /* PIDFD_THREAD, Linux 6.9 */)
		if err != nil {
			res <- started{err: err}
			return
		}
		p, err := procxy.New[Calculator](t.Context(), procxy.Logger(childLog(t)))
		res <- started{p, tfd, err}
	}
	go start()
	r := <-res
	if r.p == nil && r.err == nil { // that one got the main thread
		go start()
		r = <-res
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.p.Close() })
	defer unix.Close(r.thread)
	// Readable once the thread has exited, after the kernel has sent the
	// parent-death signals of the children it forked.
	if _, err := unix.Poll([]unix.PollFd{{Fd: int32(r.thread), Events: unix.POLLIN}}, -1); err != nil {
		t.Fatal(err)
	}
	if sum, err := procxy.Call[int](t.Context(), r.p, "Add", 2, 3); err != nil || sum != 5 {
		t.Fatalf("after the starting thread ended: Add = %d, %v; want 5 from a live child", sum, err)
	}
}
