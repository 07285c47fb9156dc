//go:generate procxy gen -type Clock

// Package imports uses types from other packages, one imported under
// another name, and declares a name that an import would take.
package imports

import (
	"context"
	stdjson "encoding/json"
	"net/netip"
	str "strings"
	"time"
)

// procxy takes the name the stubs would import the runtime under.
var procxy = "taken"

type Clock struct{}

func (*Clock) Now(ctx context.Context) (time.Time, error) { return time.Now(), nil }

func (*Clock) Wait(d time.Duration) time.Duration { return d }

// Time's parameter is named like the package of its result.
func (*Clock) Time(time time.Duration) (time.Duration, error) { return time, nil }

func (*Clock) Decode(raw stdjson.RawMessage) (map[string]any, error) { return nil, nil }

func (*Clock) Addrs(prefix netip.Prefix) []netip.Addr { return nil }

// Split uses strings only in its body: the stubs do not import it.
func (*Clock) Split(s, sep string) []string { return str.Split(s, sep) }
