package supervise

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// envAlloc makes the test binary a child that allocates until it fails.
const envAlloc = "SUPERVISE_TEST_ALLOC"

var sink [][]byte

func TestMain(m *testing.M) {
	if os.Getenv(envAlloc) != "" {
		for {
			b := make([]byte, 16<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			sink = append(sink, b)
		}
	}
	goleak.VerifyTestMain(m)
}
