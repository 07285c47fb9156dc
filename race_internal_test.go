//go:build race

package procxy

const raceEnabled = true
