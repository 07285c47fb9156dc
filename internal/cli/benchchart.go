package cli

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// chartBuckets is the number of bars of the chart's histogram.
const chartBuckets = 40

// The chart's size: two panels, one above the other.
var chartWidth, chartHeight = 7 * vg.Inch, 7 * vg.Inch

// percentileMarks are the percentiles marked on the histogram.
var percentileMarks = []struct {
	name  string
	q     float64
	color color.Color
	dash  []vg.Length
}{
	{"p50", 0.50, color.RGBA{R: 0x1b, G: 0x9e, B: 0x77, A: 0xff}, nil},
	{"p90", 0.90, color.RGBA{R: 0xd9, G: 0x5f, B: 0x02, A: 0xff}, []vg.Length{vg.Points(4), vg.Points(2)}},
	{"p99", 0.99, color.RGBA{R: 0x75, G: 0x70, B: 0xb3, A: 0xff}, []vg.Length{vg.Points(1), vg.Points(2)}},
}

// writeChart draws the report's latencies into file, whose extension
// picks the format (.svg or .png; gonum/plot also writes .pdf and .eps):
// above, how many calls took how long (a histogram on a log scale with
// p50, p90 and p99 marked); below, the latency at each percentile, on a
// scale that gives 90%, 99%, 99.9% … equal room, where tails show.
func writeChart(file string, r *benchReport) error {
	if len(r.latencies) == 0 {
		return errors.New("no call succeeded: there is nothing to chart")
	}
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(file)), ".")
	c, err := draw.NewFormattedCanvas(chartWidth, chartHeight, format)
	if err != nil {
		return fmt.Errorf("chart %s: %w (use .svg or .png)", file, err)
	}
	hist, err := histogramPlot(r)
	if err != nil {
		return err
	}
	pct, err := percentilePlot(r)
	if err != nil {
		return err
	}
	plots := [][]*plot.Plot{{hist}, {pct}}
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Points(18), PadTop: vg.Points(6), PadBottom: vg.Points(6),
		PadLeft: vg.Points(6), PadRight: vg.Points(12)}
	canvases := plot.Align(plots, tiles, draw.New(c))
	hist.Draw(canvases[0][0])
	pct.Draw(canvases[1][0])

	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("chart %s: %w", file, err)
	}
	return f.Close()
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func histogramPlot(r *benchReport) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("procxy bench %s: %d calls, concurrency %d, %.0f calls/s, p50 %s, p99 %s",
		r.Method, r.Calls, r.Concurrency, r.CallsPerSec,
		round(time.Duration(r.Latency.P50)), round(time.Duration(r.Latency.P99)))
	p.X.Label.Text = "latency (log scale)"
	p.Y.Label.Text = "calls"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = durationTicks{log: true}
	p.Legend.Top = true

	var bins []plotter.HistogramBin
	for _, b := range histogram(r.latencies, chartBuckets) {
		lo, hi := micros(time.Duration(max(b.FromNS, 1))), micros(time.Duration(max(b.ToNS, 1)))
		if hi <= lo {
			hi = lo * 1.01
		}
		bins = append(bins, plotter.HistogramBin{Min: lo, Max: hi, Weight: float64(b.Count)})
	}
	h := &plotter.Histogram{Bins: bins, FillColor: color.RGBA{R: 0x8c, G: 0xb4, B: 0xd8, A: 0xff},
		LineStyle: plotter.DefaultLineStyle}
	h.LineStyle.Width = vg.Points(0.5)
	p.Add(h)

	var most float64
	for _, b := range bins {
		most = max(most, b.Weight)
	}
	for _, m := range percentileMarks {
		x := micros(percentile(r.latencies, m.q))
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: most}})
		if err != nil {
			return nil, err
		}
		l.Color, l.Dashes, l.Width = m.color, m.dash, vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s %s", m.name, round(percentile(r.latencies, m.q))), l)
	}
	return p, nil
}

func percentilePlot(r *benchReport) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "latency by percentile"
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency"
	p.Y.Min = 0
	p.Y.Tick.Marker = durationTicks{}

	// x = −log10(1 − q): 0 at q = 0, 1 at 90%, 2 at 99%, … up to the
	// last latency, at q = 1 − 1/n.
	n := len(r.latencies)
	xmax := math.Log10(float64(n))
	const points = 400
	xys := make(plotter.XYs, 0, points+1)
	for i := range points + 1 {
		x := xmax * float64(i) / points
		q := 1 - math.Pow(10, -x)
		xys = append(xys, plotter.XY{X: x, Y: micros(percentile(r.latencies, q))})
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, err
	}
	l.Width = vg.Points(1.5)
	l.Color = color.RGBA{R: 0x1f, G: 0x5f, B: 0x9f, A: 0xff}
	p.Add(l)
	p.X.Min, p.X.Max = 0, math.Max(xmax, 1)
	p.X.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		var ts []plot.Tick
		for k := 0; float64(k) <= hi+1e-9; k++ {
			ts = append(ts, plot.Tick{Value: float64(k), Label: nines(k)})
		}
		return ts
	})
	return p, nil
}

// nines labels −log10(1 − q) = k: 0%, 90%, 99%, 99.9%, …
func nines(k int) string {
	switch k {
	case 0:
		return "0%"
	case 1:
		return "90%"
	case 2:
		return "99%"
	}
	return "99." + strings.Repeat("9", k-2) + "%"
}

// durationTicks marks an axis of microseconds with durations (1ms, 250µs).
type durationTicks struct{ log bool }

func (t durationTicks) Ticks(lo, hi float64) []plot.Tick {
	if !t.log {
		ts := plot.DefaultTicks{}.Ticks(lo, hi)
		for i := range ts {
			if ts[i].Label != "" {
				ts[i].Label = durationLabel(ts[i].Value)
			}
		}
		return ts
	}
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v < lo*0.999 || v > hi*1.001 {
				continue
			}
			ts = append(ts, plot.Tick{Value: v, Label: durationLabel(v)})
		}
	}
	if len(ts) < 2 { // a narrow range: mark its ends
		ts = append(ts, plot.Tick{Value: lo, Label: durationLabel(lo)}, plot.Tick{Value: hi, Label: durationLabel(hi)})
	}
	return ts
}

func durationLabel(us float64) string {
	if us == 0 {
		return "0"
	}
	return round(time.Duration(us * float64(time.Microsecond))).String()
}
