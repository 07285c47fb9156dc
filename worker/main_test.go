package worker_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Tests that want authentication set a token explicitly or with t.Setenv.
	os.Unsetenv("PROCWIRE_TOKEN")
	goleak.VerifyTestMain(m)
}
