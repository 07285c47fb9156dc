//go:build unix

package transport

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// maxPathLen is the longest socket path the OS accepts, leaving room for the
// terminating NUL as C programs (and Node.js) do: 107 bytes on Linux, 103 on
// macOS and the BSDs.
const maxPathLen = len(syscall.RawSockaddrUnix{}.Path) - 1

// SocketDir returns the current user's private directory for sockets,
// creating it with mode 0700 if needed.
//
// The directory is $XDG_RUNTIME_DIR/procxy when XDG_RUNTIME_DIR is set to an
// absolute path naming a directory that the current user owns and that is not
// writable by group or others; otherwise it is procxy-<uid> in [os.TempDir].
// An existing directory must be a real directory (not a symlink) owned by the
// current user; if its mode is not 0700 (say, it grants group or other
// access), SocketDir sets it to 0700. If someone else owns it, SocketDir
// returns an error rather than use a directory another user controls.
func SocketDir() (string, error) {
	uid := os.Getuid()
	var dir string
	if xdg := os.Getenv("XDG_RUNTIME_DIR"); xdg != "" && xdgUsable(xdg, uid) {
		dir = filepath.Join(xdg, "procxy")
	} else {
		dir = filepath.Join(os.TempDir(), "procxy-"+strconv.Itoa(uid))
	}
	if err := privateDir(dir, uid); err != nil {
		return "", fmt.Errorf("transport: socket dir: %w", err)
	}
	return dir, nil
}

// xdgUsable reports whether dir looks like a proper runtime directory: an
// absolute path to a directory owned by uid that only its owner may write.
func xdgUsable(dir string, uid int) bool {
	if !filepath.IsAbs(dir) {
		return false
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o022 != 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == uid
}

// privateDir makes sure dir is a directory owned by uid with mode 0700.
func privateDir(dir string, uid int) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	// Lstat, not Stat: a symlink planted in a shared directory such as /tmp
	// could point anywhere, so it is refused rather than followed.
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory (mode %v)", dir, fi.Mode())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot read owner: %w", dir, errors.ErrUnsupported)
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("%s is owned by uid %d, not by the current user (uid %d): %w",
			dir, st.Uid, uid, fs.ErrPermission)
	}
	// Mkdir's mode is filtered by the umask, so fix it either way. In a
	// sticky directory such as /tmp only the owner (us) may rename or remove
	// dir, so it cannot be swapped between the Lstat and the Chmod.
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return err
		}
	}
	return nil
}
