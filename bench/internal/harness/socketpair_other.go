//go:build !unix

package harness

import (
	"errors"
	"os"
)

func socketpair() (parent, child *os.File, err error) {
	return nil, nil, errors.ErrUnsupported
}
