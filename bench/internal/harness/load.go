package harness

import (
	"os"
	"strings"
)

// LoadAverage returns the 1-, 5- and 15-minute load averages as
// /proc/loadavg gives them ("0.52 0.61 0.70"), or "?" where there is none.
// Every benchmark prints it before and after a run: the machine's other
// work moves the numbers.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
