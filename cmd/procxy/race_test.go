//go:build race

package main

// raceEnabled: the tests build the procxy command with the race
// detector too, so that the commands they run as processes are checked.
const raceEnabled = true
