package cli

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress display modes (procxy bench -progress).
const (
	progressAuto  = "auto"  // a bar on a terminal, lines otherwise
	progressBar   = "bar"   // a progress bar
	progressLines = "lines" // a plain line every linesEvery
	progressNone  = "none"
)

// How often the display is refreshed. A variable so that tests can make
// the lines come faster.
var (
	barEvery   = 100 * time.Millisecond
	linesEvery = time.Second
)

// progress shows how a load run goes, on its own goroutine, until stop.
type progress struct {
	w        io.Writer
	cnt      *loadCounters
	calls    int64         // the run's target, or 0
	duration time.Duration // the run's length, or 0
	start    time.Time
	bar      *progressbar.ProgressBar // nil in lines mode

	done chan struct{}
	wg   sync.WaitGroup
}

// startProgress starts the display in mode on w, or returns nil for none
// (and for auto when w is not a terminal and lines are not wanted).
func startProgress(w *output, mode string, cnt *loadCounters, calls int64, duration time.Duration, what string) *progress {
	if mode == progressAuto {
		mode = progressLines
		if w.terminal {
			mode = progressBar
		}
	}
	if mode == progressNone {
		return nil
	}
	p := &progress{w: w, cnt: cnt, calls: calls, duration: duration, start: time.Now(), done: make(chan struct{})}
	every := linesEvery
	if mode == progressBar {
		every = barEvery
		max := calls
		if max == 0 {
			max = duration.Milliseconds()
		}
		opts := []progressbar.Option{
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(what),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(every),
			progressbar.OptionClearOnFinish(),
		}
		if calls > 0 {
			opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("calls"))
		}
		p.bar = progressbar.NewOptions64(max, opts...)
	}
	p.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.show(what)
			}
		}
	})
	return p
}

func (p *progress) show(what string) {
	done, failed := p.cnt.done.Load(), p.cnt.failed.Load()
	elapsed := time.Since(p.start)
	rate := float64(done+failed) / elapsed.Seconds()
	if p.bar != nil {
		if p.calls > 0 {
			p.bar.Set64(done + failed)
		} else {
			p.bar.Describe(fmt.Sprintf("%s: %d calls, %.0f/s", what, done+failed, rate))
			p.bar.Set64(min(elapsed.Milliseconds(), p.duration.Milliseconds()))
		}
		return
	}
	line := fmt.Sprintf("procxy bench: %s: %d calls", what, done+failed)
	switch {
	case p.calls > 0:
		line += fmt.Sprintf(" of %d (%.0f%%)", p.calls, 100*float64(done+failed)/float64(p.calls))
	case p.duration > 0:
		line += fmt.Sprintf(", %s of %s", elapsed.Round(time.Second), p.duration)
	}
	fmt.Fprintf(p.w, "%s, %.0f calls/s, %d failed\n", line, rate, failed)
}

// stop ends the display; a bar is cleared.
func (p *progress) stop() {
	if p == nil {
		return
	}
	close(p.done)
	p.wg.Wait()
	if p.bar != nil {
		p.bar.Finish()
		p.bar.Exit()
	}
}
