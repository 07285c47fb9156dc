package cli

import "time"

// SetProgressEvery makes procxy bench refresh its progress display every d
// (both the bar and the lines), until the returned function restores it.
func SetProgressEvery(d time.Duration) (restore func()) {
	bar, lines := barEvery, linesEvery
	barEvery, linesEvery = d, d
	return func() { barEvery, linesEvery = bar, lines }
}
