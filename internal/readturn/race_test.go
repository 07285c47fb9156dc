//go:build race

package readturn_test

const raceEnabled = true
