package lane

import (
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Region is a shared memory region: a memfd mapped into this process.
type Region struct {
	f    *os.File // until DropFile: the descriptor to pass to the peer
	mem  []byte
	heap bool // mem is ordinary memory (tests): nothing to unmap
}

// TestingDisable makes Create fail as it does where memfd_create is
// refused (a seccomp filter, an old kernel): tests use it to see the
// connection fall back to the socket.
var TestingDisable atomic.Bool

// Create makes a region of size bytes that this process writes: a memfd,
// sealed against shrinking and growing, mapped read-write. Its pages are
// allocated as they are first written.
func Create(size int) (*Region, error) {
	if TestingDisable.Load() {
		return nil, fmt.Errorf("%w: memfd_create: %w", ErrUnsupported, unix.ENOSYS)
	}
	fd, err := unix.MemfdCreate("procxy-lane", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("%w: memfd_create: %w", ErrUnsupported, err)
	}
	f := os.NewFile(uintptr(fd), "procxy-lane")
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return nil, fmt.Errorf("lane: size the region: %w", err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: seal the region: %w", ErrUnsupported, err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lane: map the region: %w", err)
	}
	return &Region{f: f, mem: mem}, nil
}

// Map maps a region received from the peer, after checking that it is
// sealed against shrinking (so no read of it can fault) and has exactly
// size bytes. It takes ownership of f.
func Map(f *os.File, size int, writable bool) (*Region, error) {
	defer f.Close() // the mapping does not need the descriptor
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: the peer's region has no seals: %w", ErrProtocol, err)
	}
	if seals&unix.F_SEAL_SHRINK == 0 {
		return nil, fmt.Errorf("%w: the peer's region is not sealed against shrinking", ErrProtocol)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("lane: stat the peer's region: %w", err)
	}
	if st.Size != int64(size) {
		return nil, fmt.Errorf("%w: the peer's region has %d bytes, the offer says %d", ErrProtocol, st.Size, size)
	}
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("lane: map the peer's region: %w", err)
	}
	return &Region{mem: mem}, nil
}

// File returns the region's descriptor, to pass to the peer; nil after
// DropFile or for a mapped peer region.
func (r *Region) File() *os.File { return r.f }

// DropFile closes the descriptor once the peer has its own.
func (r *Region) DropFile() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

// Bytes is the mapped memory.
func (r *Region) Bytes() []byte { return r.mem }

// Len is the region's size.
func (r *Region) Len() int { return len(r.mem) }

// Close unmaps the region and closes its descriptor.
func (r *Region) Close() error {
	r.DropFile()
	if r.mem == nil || r.heap {
		r.mem = nil
		return nil
	}
	err := unix.Munmap(r.mem)
	r.mem = nil
	return err
}

// Rights encodes descriptors for SCM_RIGHTS.
func Rights(files ...*os.File) []byte {
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	return unix.UnixRights(fds...)
}

// ParseRights returns the descriptors passed in a control message, each
// as an *os.File; ok is false if the message holds none.
func ParseRights(oob []byte) (files []*os.File) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "procxy-lane-peer"))
		}
	}
	return files
}

// RightsSpace is the room a control message for n descriptors takes.
func RightsSpace(n int) int { return unix.CmsgSpace(n * 4) }

// Supported reports whether this platform can have a lane.
const Supported = true
