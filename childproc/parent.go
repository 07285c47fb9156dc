package childproc

import (
	"fmt"
	"os"
	"strconv"
	"sync"
)

// The process's own parent channel: there is at most one, so it is
// opened once.
var parent struct {
	once sync.Once
	ch   *Channel
	err  error
}

func init() {
	// Make the inherited channel fd close-on-exec at once, so that no
	// process started before Parent is called inherits it (§8.6). This
	// changes nothing else: Parent still finds the fd.
	if fd, err := strconv.Atoi(os.Getenv(envChannelFD)); err == nil && fd >= 0 {
		markCloseOnExec(fd)
	}
}

// Parent returns the IPC channel to the Node.js (or childproc) parent that
// started this program with fork() or an 'ipc' stdio entry, or nil, nil
// when there is none (NODE_CHANNEL_FD is unset or empty).
//
// The first call takes over the channel as Node does for a Node child:
// it removes NODE_CHANNEL_FD and NODE_CHANNEL_SERIALIZATION_MODE from the
// environment and replaces the inherited fd by a close-on-exec copy, so
// grandchildren neither inherit the socket nor try to attach to it (§8.7).
// Later calls return the same result. Messages are bounded by
// DefaultMaxMessageSize. Only 'json' serialization is supported; with
// 'advanced' Parent closes the fd (the parent sees a disconnect) and
// returns ErrUnsupportedSerialization.
//
// There is no event loop in Go: the program decides how long it lives.
// Treat the end of [Channel.Messages] as "parent gone", as a Node child
// with a 'disconnect' listener does.
func Parent() (*Channel, error) {
	parent.once.Do(func() {
		parent.ch, parent.err = openParent(os.LookupEnv, os.Unsetenv, DefaultMaxMessageSize)
	})
	return parent.ch, parent.err
}

// openParent does Parent's work with the environment passed in, for tests.
func openParent(lookup func(string) (string, bool), unset func(string) error, maxMessage int) (*Channel, error) {
	s, ok := lookup(envChannelFD)
	if !ok || s == "" {
		return nil, nil
	}
	mode, _ := lookup(envChannelMode)
	unset(envChannelFD)
	unset(envChannelMode)
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("childproc: %s=%q: %w", envChannelFD, s, ErrInvalidArgument)
	}
	conn, err := inheritedConn(fd)
	if err != nil {
		return nil, fmt.Errorf("childproc: %s=%d: %w", envChannelFD, fd, err)
	}
	if mode != "" && mode != "json" {
		conn.Close()
		return nil, fmt.Errorf("%w: %s=%q", ErrUnsupportedSerialization, envChannelMode, mode)
	}
	return newChannel(conn, maxMessage, nil), nil
}
