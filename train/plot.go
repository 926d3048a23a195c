package train

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

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
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
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
	for x := left; x < w-right; x++ {
		img.Set(x, h-bottom, axis)
	}
	for y := top; y <= h-bottom; y++ {
		img.Set(left, y, axis)
	}
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
				line(img, prevX, prevY, x, y, s.c)
			}
			prevX, prevY = x, y
		}
	}
	d := &font.Drawer{Dst: img, Src: image.NewUniform(axis), Face: basicfont.Face7x13}
	text := func(x, y int, s string, c color.Color) {
		d.Src = image.NewUniform(c)
		d.Dot = fixed.P(x, y)
		d.DrawString(s)
	}
	last := pts[len(pts)-1]
	text(left, 18, fmt.Sprintf("loss (max %.3g, last %.3g)", maxLoss, last.Loss), series[2].c)
	text(left+260, 18, fmt.Sprintf("batch accuracy (last %.3f)", last.BatchAcc), series[1].c)
	text(left+500, 18, fmt.Sprintf("lr (max %.3g)", maxLR), color.RGBA{0x80, 0x80, 0x80, 0xff})
	text(left, h-bottom+16, "0", axis)
	text(w-right-60, h-bottom+16, fmt.Sprintf("step %d", int(maxStep)), axis)
	text(4, top+8, "1.0", axis)
	text(4, h-bottom, "0", axis)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("train: plot: %w", err)
	}
	if err := runfolder.Write(pngPath, buf.Bytes()); err != nil {
		return fmt.Errorf("train: plot: %w", err)
	}
	return nil
}

// line draws a straight segment (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
