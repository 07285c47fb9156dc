//go:build !linux

package supervise

import "errors"

const rssSupported = false

func residentBytes(int) (int64, error) { return 0, errors.ErrUnsupported }

func readOOMCount() oomCounter { return oomCounter{} }
