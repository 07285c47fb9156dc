package ipc_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if childMain() { // the test binary re-run as a server or client process
		return
	}
	goleak.VerifyTestMain(noOrphans{m})
}
