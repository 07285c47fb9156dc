package cli_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/procxy/procxy"
)

func TestMain(m *testing.M) {
	procxy.Main()                            // the demo's children are this test binary, re-run
	os.Setenv("GORACE", "atexit_sleep_ms=0") // race-built children exit without a pause
	goleak.VerifyTestMain(m)
}
