//go:build !unix

package main

import (
	"context"
	"errors"
)

// The raw-socket floor needs Unix socketpairs.

var floorPlacements = []struct{ name, client, echo string }{{"floor", "", ""}}

func maybeFloor() {}

func runFloor(context.Context, string, string, string, int, []string) (result, error) {
	return result{}, errors.ErrUnsupported
}

func haveTaskset() error { return errors.ErrUnsupported }
