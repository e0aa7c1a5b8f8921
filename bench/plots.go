package bench

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/unimos/unimos/internal/atomicfile"
	"github.com/unimos/unimos/unimos"
)

// plotRef is a plot of the report: its title and its path relative to the
// bench directory.
type plotRef struct{ title, path string }

// sectionPlots are the plots of one protocol's section.
type sectionPlots struct {
	tasks     string    // per-task (VisDA-2017: per-class) accuracy of each method
	curves    []plotRef // UniMoS training curves, one per task
	confusion []plotRef // confusion matrices (VisDA-2017), one per method
}

// colours is a qualitative palette (matplotlib's "tab10"), readable in
// print and by most colour-blind readers.
var colours = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
}

var grey = color.RGBA{0xb0, 0xb0, 0xb0, 0xff}

// writePlots draws a protocol's plots into out/plots.
func writePlots(out string, pr protocolRuns) (sectionPlots, error) {
	p := pr.protocol
	var sp sectionPlots
	rel := func(name string) (string, string) {
		r := filepath.Join(PlotsDir, p.Name+"-"+name+".png")
		return r, filepath.Join(out, r)
	}
	cols, ours, published := resultsTable(pr, "")
	var bars []row
	for _, r := range append(ours, published...) {
		if r.legend != "" {
			bars = append(bars, r)
		}
	}
	what := "task"
	if p.MeanClass {
		what = "class"
	}
	relPath, path := rel("tasks")
	title := fmt.Sprintf("%s: accuracy per %s (mean over seeds)", p.Title, what)
	if err := barChart(path, title, cols, bars); err != nil {
		return sp, err
	}
	sp.tasks = relPath

	for _, t := range pr.tasks() {
		var runs []*unimos.Result
		for _, r := range pr.of(UniMoS) {
			if r.task == t && len(r.result.History) > 0 {
				runs = append(runs, r.result)
			}
		}
		if len(runs) == 0 {
			continue
		}
		relPath, path := rel("curves-" + t.Source + "_to_" + t.Target)
		which := fmt.Sprintf("seed %d", runs[0].Seed)
		if len(runs) > 1 {
			which = fmt.Sprintf("mean over %d seeds", len(runs))
		}
		title := fmt.Sprintf("%s %s: UniMoS training (%s)", p.Title, p.taskLabel(t), which)
		if err := curvesChart(path, title, p, runs); err != nil {
			return sp, err
		}
		sp.curves = append(sp.curves, plotRef{p.taskLabel(t), relPath})
	}

	if p.MeanClass {
		for _, m := range MethodNames() {
			var sum *Confusion
			n := 0
			for _, r := range pr.of(m) {
				if r.confusion == nil {
					continue
				}
				sum = addConfusion(sum, r.confusion)
				n++
			}
			if sum == nil {
				continue
			}
			relPath, path := rel("confusion-" + m)
			when := ""
			if m == UniMoS {
				when = ", last epoch"
			}
			title := fmt.Sprintf("%s, %s: confusion matrix, %% of each true class (%d run%s%s)", p.Title, methodTitle(m), n, plural(n), when)
			if err := confusionChart(path, title, *sum); err != nil {
				return sp, err
			}
			sp.confusion = append(sp.confusion, plotRef{title, relPath})
		}
	}
	return sp, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func methodTitle(m string) string {
	return map[string]string{ZeroShot: "CLIP zero-shot", SourceOnly: "source-only", UniMoS: "UniMoS"}[m]
}

// addConfusion adds c's counts to sum (nil: a copy of c).
func addConfusion(sum, c *Confusion) *Confusion {
	if sum == nil {
		out := Confusion{Classes: c.Classes}
		for _, r := range c.Counts {
			out.Counts = append(out.Counts, append([]int(nil), r...))
		}
		return &out
	}
	for i, r := range c.Counts {
		for j, v := range r {
			sum.Counts[i][j] += v
		}
	}
	return sum
}

// newPlot returns a plot with a title, axis labels and a light grid.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text = x
	p.Y.Label.Text = y
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	grid.Horizontal.Color = color.Gray{0xdd}
	p.Add(grid)
	return p
}

// stepTicks puts a labelled tick every major unit and an unlabelled one
// every minor unit.
type stepTicks struct{ major, minor float64 }

// Ticks implements plot.Ticker.
func (s stepTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for i := math.Ceil(lo/s.minor - 1e-9); i*s.minor <= hi+1e-9; i++ {
		v := math.Round(i*s.minor*1e9) / 1e9 // 6·0.1 is 0.6000000000000001
		if v == 0 {
			v = 0 // not −0, which prints as "-0"
		}
		t := plot.Tick{Value: v}
		if r := v / s.major; math.Abs(r-math.Round(r)) < 1e-9 {
			t.Label = strconv.FormatFloat(v, 'f', -1, 64)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// percentAxis sets an axis to 0-100 with a label every 10.
func percentAxis(a *plot.Axis) {
	a.Min, a.Max = 0, 100
	a.Tick.Marker = stepTicks{10, 5}
}

// unitAxis sets an axis to 0-1 with a label every 0.2.
func unitAxis(a *plot.Axis) {
	a.Min, a.Max = 0, 1
	a.Tick.Marker = stepTicks{0.2, 0.1}
}

// epochAxis sets an axis to 0-epochs with about five labelled ticks at
// round numbers and a tick at every epoch (every fifth beyond 50).
func epochAxis(a *plot.Axis, epochs int) {
	a.Min, a.Max = 0, float64(epochs)
	major := 1.0
	for _, step := range []float64{1, 2, 5, 10, 20, 50, 100} {
		if major = step; float64(epochs)/step <= 6 {
			break
		}
	}
	minor := 1.0
	if epochs > 50 {
		minor = major / 2
	}
	a.Tick.Marker = stepTicks{major, minor}
}

// panel is a plot with a legend drawn beside it, to the right.
type panel struct {
	plot   *plot.Plot
	legend plot.Legend
}

// savePanels draws panels one above the other, each legend in a strip of
// legendWidth on the right, and writes the PNG atomically.
func savePanels(path string, width, height, legendWidth vg.Length, panels []panel) error {
	img := vgimg.New(width, height)
	dc := draw.New(img)
	plotsArea := dc
	plotsArea.Max.X -= legendWidth
	grid := make([][]*plot.Plot, len(panels))
	for i, p := range panels {
		grid[i] = []*plot.Plot{p.plot}
	}
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadY: vg.Points(14)}
	canvases := plot.Align(grid, tiles, plotsArea)
	for i, p := range panels {
		p.plot.Draw(canvases[i][0])
		strip := canvases[i][0]
		strip.Min.X, strip.Max.X = plotsArea.Max.X+vg.Points(6), dc.Max.X-vg.Points(6)
		strip.Max.Y -= vg.Points(28) // below the title's height
		p.legend.Draw(strip)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
		return err
	})
}

func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.Top, l.Left = true, true
	l.TextStyle.Font.Size = vg.Points(10)
	l.Padding = vg.Points(3)
	return l
}

// barChart draws grouped bars: one group per column plus "Avg", one bar
// per row (its mean over seeds).
func barChart(path, title string, cols []column, rows []row) error {
	groups := append(append([]column(nil), cols...), column{"", "Avg"})
	p := newPlot(title, "", "accuracy (%)")
	percentAxis(&p.Y)
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.label
	}
	p.NominalX(names...)
	if len(groups) > 8 {
		p.X.Tick.Label.Rotation = math.Pi / 4
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
	}
	plotWidth := max(6*vg.Inch, vg.Length(len(groups)*len(rows))*0.16*vg.Inch)
	barWidth := plotWidth / vg.Length(len(groups)) * 0.8 / vg.Length(max(len(rows), 1))
	legend := newLegend()
	for i, r := range rows {
		values := make(plotter.Values, len(groups))
		for j, g := range groups {
			v := r.avg
			if g.key != "" {
				v = r.cells[g.key]
			}
			if len(v) > 0 {
				values[j], _ = meanStd(v)
			}
		}
		b, err := plotter.NewBarChart(values, barWidth)
		if err != nil {
			return fmt.Errorf("plotting %s: %w", path, err)
		}
		b.Offset = barWidth * (vg.Length(i) - vg.Length(len(rows)-1)/2)
		b.LineStyle.Width = 0
		b.Color = colours[i%len(colours)]
		if r.published {
			b.Color = grey
		}
		p.Add(b)
		legend.Add(r.legend, b)
	}
	return savePanels(path, plotWidth+3.6*vg.Inch, 4.6*vg.Inch, 3.2*vg.Inch, []panel{{p, legend}})
}

// curvesChart draws a task's UniMoS training curves, averaged over runs
// (seeds) of the same length: accuracies, the MET weight and the
// label-free criteria, per number of epochs trained (0 = before training).
func curvesChart(path, title string, proto Protocol, runs []*unimos.Result) error {
	n := len(runs[0].History)
	for _, r := range runs {
		n = min(n, len(r.History))
	}
	// mean averages one measure over runs at each test; from skips the
	// test before training.
	mean := func(from int, f func(unimos.Evaluation) float64) plotter.XYs {
		var xys plotter.XYs
		for i := from; i < n; i++ {
			var s float64
			for _, r := range runs {
				s += f(r.History[i])
			}
			xys = append(xys, plotter.XY{X: float64(runs[0].History[i].Epoch), Y: s / float64(len(runs))})
		}
		return xys
	}
	x := "epochs trained (0 = before training)"
	epochs := runs[0].History[n-1].Epoch

	acc := newPlot(title, x, "target accuracy (%)")
	percentAxis(&acc.Y)
	epochAxis(&acc.X, epochs)
	accLegend := newLegend()
	series := []struct {
		name string
		f    func(unimos.Evaluation) float64
	}{
		{"ensemble (reported)", func(e unimos.Evaluation) float64 { return deref(e.Accuracy) }},
		{"VAC (vision)", func(e unimos.Evaluation) float64 { return deref(e.VisionAccuracy) }},
		{"LAC (language, debiased)", func(e unimos.Evaluation) float64 { return deref(e.LanguageAccuracy) }},
	}
	if proto.MeanClass {
		series = append(series, struct {
			name string
			f    func(unimos.Evaluation) float64
		}{"ensemble, mean class", func(e unimos.Evaluation) float64 { return deref(e.MeanClassAccuracy) }})
	}
	for i, s := range series {
		if err := addLine(acc, &accLegend, s.name, mean(0, s.f), colours[i], false); err != nil {
			return err
		}
	}
	if runs[0].ZeroShot != nil {
		var zs float64
		for _, r := range runs {
			zs += r.ZeroShot.Accuracy / float64(len(runs))
		}
		flat := plotter.XYs{{X: 0, Y: zs}, {X: float64(n - 1), Y: zs}}
		if err := addLine(acc, &accLegend, "CLIP zero-shot", flat, color.Gray{0x60}, true); err != nil {
			return err
		}
	}

	w := newPlot("MET ensemble weight", x, "weight")
	unitAxis(&w.Y)
	epochAxis(&w.X, epochs)
	wLegend := newLegend()
	if err := addLine(w, &wLegend, "w (learned, mean over epoch)", mean(1, func(e unimos.Evaluation) float64 { return e.METWeight }), colours[4], false); err != nil {
		return err
	}
	if err := addLine(w, &wLegend, "l_e (test-time VAC weight)", mean(0, func(e unimos.Evaluation) float64 { return e.TestWeight }), colours[5], true); err != nil {
		return err
	}

	crit := newPlot("Label-free criteria (trained epochs, scaled to [0, 1], 1 = preferred)", "epochs trained", "scaled value")
	unitAxis(&crit.Y)
	epochAxis(&crit.X, epochs) // aligned with the panels above
	critLegend := newLegend()
	for i, c := range unimos.Criteria() {
		xys := mean(1, func(e unimos.Evaluation) float64 { return c.Value(e.LabelFree) })
		if slices.ContainsFunc(xys, func(p plotter.XY) bool { return math.IsNaN(p.Y) }) {
			continue // a combined criterion, or one that runs of earlier versions did not record
		}
		scaleToUnit(xys, c.HigherIsBetter)
		// More criteria than colours: the second round is dashed.
		if err := addLine(crit, &critLegend, c.Name, xys, colours[i%len(colours)], i >= len(colours)); err != nil {
			return err
		}
	}
	return savePanels(path, 9.5*vg.Inch, 10*vg.Inch, 2.5*vg.Inch, []panel{{acc, accLegend}, {w, wLegend}, {crit, critLegend}})
}

// addLine adds a line with point markers (dashed, without markers, when
// dashed) to p and its legend.
func addLine(p *plot.Plot, legend *plot.Legend, name string, xys plotter.XYs, c color.Color, dashed bool) error {
	if len(xys) == 0 {
		return nil
	}
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return fmt.Errorf("plotting %s: %w", name, err)
	}
	line.Color, line.Width = c, vg.Points(1.6)
	points.Color, points.Radius, points.Shape = c, vg.Points(1.8), draw.CircleGlyph{}
	if dashed {
		line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		p.Add(line)
		legend.Add(name, line)
		return nil
	}
	p.Add(line, points)
	legend.Add(name, line, points)
	return nil
}

// scaleToUnit maps the values to [0, 1] by min-max scaling, so that 1 is
// the preferred end (the smallest value when lower is better).
func scaleToUnit(xys plotter.XYs, higherIsBetter bool) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range xys {
		lo, hi = min(lo, p.Y), max(hi, p.Y)
	}
	for i := range xys {
		v := 0.5 // a constant criterion prefers nothing
		if hi > lo {
			v = (xys[i].Y - lo) / (hi - lo)
		}
		if !higherIsBetter {
			v = 1 - v
		}
		xys[i].Y = v
	}
}

// confusionGrid is a row-normalised confusion matrix as a heat map grid,
// the first true class at the top.
type confusionGrid struct{ percent [][]float64 }

func (g confusionGrid) Dims() (c, r int)      { return len(g.percent), len(g.percent) }
func (g confusionGrid) Z(c, r int) float64    { return g.percent[len(g.percent)-1-r][c] }
func (g confusionGrid) X(c int) float64       { return float64(c) }
func (g confusionGrid) Y(r int) float64       { return float64(r) }
func (g confusionGrid) Min() float64          { return 0 }
func (g confusionGrid) Max() float64          { return 100 }
func (g confusionGrid) label(c, r int) string { return fmt.Sprintf("%.0f", g.Z(c, r)) }

// confusionChart draws a confusion matrix as a heat map of row percentages
// (each true class sums to 100), with the values written in the cells.
func confusionChart(path, title string, c Confusion) error {
	k := len(c.Classes)
	g := confusionGrid{percent: make([][]float64, k)}
	for i, row := range c.Counts {
		total := 0
		for _, v := range row {
			total += v
		}
		g.percent[i] = make([]float64, k)
		for j, v := range row {
			if total > 0 {
				g.percent[i][j] = 100 * float64(v) / float64(total)
			}
		}
	}
	p := newPlot(title, "predicted class", "true class")
	cmap := moreland.Kindlmann()
	cmap.SetMin(0)
	cmap.SetMax(100)
	heat := plotter.NewHeatMap(g, palette.Reverse(cmap).Palette(256))
	p.Add(heat)
	p.NominalX(c.Classes...)
	reversed := make([]string, k)
	for i, name := range c.Classes {
		reversed[k-1-i] = name
	}
	p.NominalY(reversed...)
	p.X.Tick.Label.Rotation = math.Pi / 4
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	if k <= 40 {
		labels := &plotter.Labels{}
		for r := range k {
			for col := range k {
				z := g.Z(col, r)
				labels.XYs = append(labels.XYs, plotter.XY{X: float64(col), Y: float64(r)})
				labels.Labels = append(labels.Labels, g.label(col, r))
				ink := color.Color(color.Black)
				if z > 55 {
					ink = color.White
				}
				labels.TextStyle = append(labels.TextStyle, text.Style{
					Color: ink, Font: font.From(plot.DefaultFont, vg.Points(8)), Handler: plot.DefaultTextHandler,
					XAlign: draw.XCenter, YAlign: draw.YCenter,
				})
			}
		}
		p.Add(labels)
	}
	side := max(6*vg.Inch, vg.Length(k)*0.45*vg.Inch)
	return savePanels(path, side+0.8*vg.Inch, side, 0, []panel{{p, plot.NewLegend()}})
}
