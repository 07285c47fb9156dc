package natsipc_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(envWorker); url != "" {
		os.Exit(runWorker(url))
	}
	goleak.VerifyTestMain(m)
}
