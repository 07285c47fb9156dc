package backoff_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/procxy/procxy/internal/backoff"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Sleep runs in a synctest bubble, whose clock only moves when every
// goroutine in it is blocked: the waits below are exact and take no real
// time.
func TestSleep(t *testing.T) {
	t.Run("full", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			if err := backoff.Sleep(t.Context(), time.Hour); err != nil {
				t.Fatalf("Sleep = %v, want nil", err)
			}
			if got := time.Since(start); got != time.Hour {
				t.Errorf("slept %v, want 1h", got)
			}
		})
	})
	t.Run("context-ends-first", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			start := time.Now()
			if err := backoff.Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Sleep = %v, want context.DeadlineExceeded", err)
			}
			if got := time.Since(start); got != time.Minute {
				t.Errorf("slept %v, want 1m (the context's deadline)", got)
			}
		})
	})
	t.Run("cancelled-from-another-goroutine", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(t.Context())
			go func() {
				time.Sleep(time.Second)
				cancel(errors.New("stop"))
			}()
			// ctx.Err(), not the cause: callers test for context.Canceled.
			if err := backoff.Sleep(ctx, time.Hour); err != context.Canceled {
				t.Fatalf("Sleep = %v, want context.Canceled", err)
			}
		})
	})
	for _, d := range []time.Duration{0, -time.Second} {
		t.Run("no-wait-"+d.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				if err := backoff.Sleep(t.Context(), d); err != nil {
					t.Errorf("Sleep(%v) = %v, want nil", d, err)
				}
				if got := time.Since(start); got != 0 {
					t.Errorf("Sleep(%v) waited %v", d, got)
				}
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				if err := backoff.Sleep(ctx, d); err != context.Canceled {
					t.Errorf("Sleep(%v) with a cancelled context = %v, want context.Canceled", d, err)
				}
			})
		})
	}
	t.Run("already-cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := backoff.Sleep(ctx, time.Hour); err != context.Canceled {
			t.Errorf("Sleep = %v, want context.Canceled", err)
		}
	})
}

func TestDelay(t *testing.T) {
	const ms = time.Millisecond
	e := backoff.Exponential{Base: 100 * ms, Max: time.Second, Jitter: 0.2}
	var got []time.Duration
	for n := 0; n <= 7; n++ {
		got = append(got, e.Delay(n, 0.5)) // r = 0.5: no jitter
	}
	want := []time.Duration{100 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second, time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Delay(0..7) = %v, want %v", got, want)
		}
	}
	if lo, hi := e.Delay(3, 0), e.Delay(3, math.Nextafter(1, 0)); lo != 320*ms || hi < 479*ms || hi > 480*ms {
		t.Errorf("Delay(3) with jitter spans [%v, %v], want [320ms, 480ms)", lo, hi)
	}
	cases := []struct {
		name string
		e    backoff.Exponential
		n    int
		r    float64
		want time.Duration
	}{
		{"fixed", backoff.Exponential{Base: 200 * ms, Max: 200 * ms}, 5, 0.5, 200 * ms},
		{"no-base-is-max", backoff.Exponential{Max: time.Second}, 1, 0.5, time.Second},
		{"negative-base-is-max", backoff.Exponential{Base: -1, Max: time.Second}, 3, 0.5, time.Second},
		{"base-above-max", backoff.Exponential{Base: time.Hour, Max: time.Second}, 1, 0.5, time.Second},
		{"no-max", backoff.Exponential{Base: time.Second}, 4, 0.5, 0},
		{"many-attempts", backoff.Exponential{Base: ms, Max: time.Hour}, 1 << 30, 0.5, time.Hour},
		{"no-overflow", backoff.Exponential{Base: 3, Max: math.MaxInt64}, 200, 0.5, math.MaxInt64},
		{"jitter-never-negative", backoff.Exponential{Base: time.Second, Max: time.Second, Jitter: 2}, 1, 0, 0},
	}
	for _, c := range cases {
		if got := c.e.Delay(c.n, c.r); got != c.want {
			t.Errorf("%s: Delay(%d, %v) = %v, want %v", c.name, c.n, c.r, got, c.want)
		}
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if r := backoff.Jitter(); r < 0 || r >= 1 {
			t.Fatalf("Jitter() = %v, want [0, 1)", r)
		}
	}
}
