//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"
)

// The floor is the cheapest possible 16 B round trip between two Go
// processes: a 4-byte big-endian length and the payload over a Unix
// socketpair, echoed by the child with one write, the parent doing one
// write and one read per call on a single goroutine (no rpc, no
// goroutine handoff). It runs in processes of its own, this binary
// re-executed with envRole set, optionally each pinned to a CPU with
// taskset, so that the placement of the two processes can be chosen.
const envRole = "PROCWIREBENCH_FLOOR"

// floorResult is what a floor client prints.
type floorResult struct {
	P50us float64 `json:"p50us"`
	P99us float64 `json:"p99us"`
	Vcs   float64 `json:"vcs"` // voluntary context switches of the client per call
}

// floorPlacements are the floor's variants: the CPUs of the client and of
// the echo child ("" lets the scheduler place them).
var floorPlacements = []struct{ name, client, echo string }{
	{"floor", "", ""},
	{"floor-same-cpu", "0", "0"},
	{"floor-cross-cpu", "0", "1"},
}

// maybeFloor turns this process into a floor client or echo child when
// envRole says so, and exits; otherwise it returns.
func maybeFloor() {
	switch os.Getenv(envRole) {
	case "":
		return
	case "echo":
		floorEcho()
		os.Exit(0)
	default: // "client <calls> <echo cpu>"
		var n int
		var cpu string
		fmt.Sscan(os.Getenv(envRole), new(string), &n, &cpu)
		r, err := floorClient(n, cpu)
		if err != nil {
			fmt.Fprintln(os.Stderr, "procwirebench floor:", err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(r)
		os.Exit(0)
	}
}

// floorEcho echoes frames on fd 3 until EOF.
func floorEcho() {
	c, err := net.FileConn(os.NewFile(3, "floor"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "procwirebench floor echo:", err)
		os.Exit(1)
	}
	br := bufio.NewReaderSize(c, 64<<10)
	buf := make([]byte, 4+1024)
	for {
		if _, err := io.ReadFull(br, buf[:4]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(buf))
		if n > len(buf)-4 {
			return
		}
		if _, err := io.ReadFull(br, buf[4:4+n]); err != nil {
			return
		}
		if _, err := c.Write(buf[:4+n]); err != nil {
			return
		}
	}
}

// floorClient starts the echo child (on cpu, if set) and times n
// sequential 16 B round trips after n/10 untimed ones.
func floorClient(n int, cpu string) (floorResult, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return floorResult{}, err
	}
	syscall.CloseOnExec(fds[0]) // the child gets fds[1] as its fd 3, and nothing else
	syscall.CloseOnExec(fds[1])
	mine, theirs := os.NewFile(uintptr(fds[0]), "floor"), os.NewFile(uintptr(fds[1]), "floor-child")
	self, err := os.Executable()
	if err != nil {
		return floorResult{}, err
	}
	cmd := exec.Command(self)
	if cpu != "" && cpu != "-" {
		cmd = exec.Command("taskset", "-c", cpu, self)
	}
	cmd.Env = append(os.Environ(), envRole+"=echo")
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return floorResult{}, err
	}
	theirs.Close()
	defer cmd.Wait()
	c, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		return floorResult{}, err
	}
	defer c.Close() // the child sees EOF and exits
	req := make([]byte, 4+16)
	binary.BigEndian.PutUint32(req, 16)
	resp := make([]byte, len(req))
	rt := func() error {
		if _, err := c.Write(req); err != nil {
			return err
		}
		_, err := io.ReadFull(c, resp)
		return err
	}
	for range n / 10 {
		if err := rt(); err != nil {
			return floorResult{}, err
		}
	}
	lat := make([]time.Duration, n)
	u0 := selfUsage()
	for i := range lat {
		s := time.Now()
		if err := rt(); err != nil {
			return floorResult{}, err
		}
		lat[i] = time.Since(s)
	}
	u1 := selfUsage()
	slices.Sort(lat)
	return floorResult{P50us: float64(pct(lat, 0.5)) / 1e3, P99us: float64(pct(lat, 0.99)) / 1e3,
		Vcs: float64(u1.vcs-u0.vcs) / float64(n)}, nil
}

// runFloor runs one floor client in the given placement.
func runFloor(ctx context.Context, name, clientCPU, echoCPU string, n int, env []string) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.CommandContext(ctx, self)
	if clientCPU != "" {
		cmd = exec.CommandContext(ctx, "taskset", "-c", clientCPU, self)
	}
	if echoCPU == "" {
		echoCPU = "-"
	}
	cmd.Env = append(append(os.Environ(), env...), fmt.Sprintf("%s=client %d %s", envRole, n, echoCPU))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", name, err)
	}
	var fr floorResult
	if err := json.Unmarshal(out, &fr); err != nil {
		return result{}, fmt.Errorf("%s printed %q: %w", name, out, err)
	}
	return result{Name: name, P50us: fr.P50us, P99us: fr.P99us, Lat: perCall{Parent: side{Vcs: fr.Vcs}}}, nil
}

// haveTaskset reports whether the floor can be pinned to CPUs.
func haveTaskset() error {
	if _, err := exec.LookPath("taskset"); err != nil {
		return err
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		return errors.New("no /proc")
	}
	return nil
}
