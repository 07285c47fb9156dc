package ipc_test

import (
	"os"
	"testing"
)

// shortDir returns a temporary directory with a short path, since Unix
// socket paths must fit in about 100 bytes.
func shortDir(t testing.TB) (string, error) {
	d, err := os.MkdirTemp("", "ipc")
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d, nil
}
