//go:build !race

package procxy_test

const raceEnabled = false
