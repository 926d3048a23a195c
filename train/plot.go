package train

import (
	"fmt"
	"image/color"
	"math"

	"github.com/bitrun/bitrun/internal/plot"
	"github.com/bitrun/bitrun/internal/runfolder"
)

// CurveFile is the training-curve picture Run writes next to the metrics.
const CurveFile = "curve.png"

// PlotMetrics draws the training curve of a metrics.jsonl file as a PNG:
// the loss (blue, left scale) and the batch accuracy (green, 0 to 1) against
// the step, with the learning rate (grey, scaled to its maximum) behind them.
func PlotMetrics(metricsPath, pngPath string) error {
	pts, err := runfolder.ReadMetrics(metricsPath)
	if err != nil {
		return fmt.Errorf("train: plot: %w", err)
	}
	if len(pts) == 0 {
		return fmt.Errorf("train: plot: %s holds no metrics", metricsPath)
	}
	const w, h, left, right, top, bottom = 800, 450, 60, 20, 30, 40
	img := plot.New(w, h)
	maxStep, maxLoss, maxLR := 1.0, 1e-9, 1e-12
	for _, p := range pts {
		maxStep = math.Max(maxStep, float64(p.Step))
		if !math.IsNaN(p.Loss) && !math.IsInf(p.Loss, 0) {
			maxLoss = math.Max(maxLoss, p.Loss)
		}
		maxLR = math.Max(maxLR, p.LR)
	}
	px := func(step float64) int { return left + int(step/maxStep*float64(w-left-right-1)) }
	py := func(frac float64) int {
		return h - bottom - int(math.Min(math.Max(frac, 0), 1)*float64(h-top-bottom-1))
	}
	axis := color.RGBA{0x40, 0x40, 0x40, 0xff}
	img.Line(left, h-bottom, w-right-1, h-bottom, axis)
	img.Line(left, top, left, h-bottom, axis)
	series := []struct {
		c     color.RGBA
		value func(metricLine) float64
	}{
		{color.RGBA{0xb0, 0xb0, 0xb0, 0xff}, func(m metricLine) float64 { return m.LR / maxLR }},
		{color.RGBA{0x20, 0xa0, 0x40, 0xff}, func(m metricLine) float64 { return m.BatchAcc }},
		{color.RGBA{0x20, 0x50, 0xd0, 0xff}, func(m metricLine) float64 { return m.Loss / maxLoss }},
	}
	for _, s := range series {
		prevX, prevY := -1, 0
		for _, p := range pts {
			x, y := px(float64(p.Step)), py(s.value(p))
			if prevX >= 0 {
				img.Line(prevX, prevY, x, y, s.c)
			}
			prevX, prevY = x, y
		}
	}
	last := pts[len(pts)-1]
	img.Text(fmt.Sprintf("loss (max %.3g, last %.3g)", maxLoss, last.Loss), left, 18, series[2].c)
	img.Text(fmt.Sprintf("batch accuracy (last %.3f)", last.BatchAcc), left+260, 18, series[1].c)
	img.Text(fmt.Sprintf("lr (max %.3g)", maxLR), left+500, 18, color.RGBA{0x80, 0x80, 0x80, 0xff})
	img.Text("0", left, h-bottom+16, axis)
	img.Text(fmt.Sprintf("step %d", int(maxStep)), w-right-60, h-bottom+16, axis)
	img.Text("1.0", 4, top+8, axis)
	img.Text("0", 4, h-bottom, axis)
	if err := img.WritePNG(pngPath); err != nil {
		return fmt.Errorf("train: plot: %w", err)
	}
	return nil
}
