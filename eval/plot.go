package eval

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// ConfusionImage renders a confusion matrix (rows true, columns predicted)
// as a heat map: each cell is shaded by its share of the row, from white (0)
// to dark blue (1) on a square-root scale so that small confusions show, with
// counts written in the cells when they fit
// and class indices along both axes.
func ConfusionImage(conf [][]int64, title string) *image.RGBA {
	n := len(conf)
	face := basicfont.Face7x13
	cell := 36
	switch {
	case n > 200:
		cell = max(1, 1200/n)
	case n > 40:
		cell = 6
	case n > 20:
		cell = 16
	}
	showCounts := cell >= 28
	margin := 40 // left and top, for indices
	titleH := 22
	w := margin + n*cell + 16
	h := titleH + margin + n*cell + 16
	w = max(w, 8*len(title)+16)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)

	text := func(s string, x, y int, c color.Color) { // (x, y) = baseline start
		d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: face, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	textW := func(s string) int { return font.MeasureString(face, s).Round() }
	text(title, 8, 15, color.Black)
	ox, oy := margin, titleH+margin
	text("predicted", ox, titleH+11, color.Gray{0x60})
	text("true", 2, oy-4, color.Gray{0x60})

	step := 1 // label every step-th index so labels do not overlap
	for step*cell < 22 {
		step++
	}
	for i := 0; i < n; i += step {
		s := strconv.Itoa(i)
		// column index, centred above the column
		text(s, ox+i*cell+cell/2-textW(s)/2, oy-6, color.Black)
		// row index, right-aligned left of the row
		text(s, ox-4-textW(s), oy+i*cell+cell/2+5, color.Black)
	}
	for i, row := range conf {
		var sum int64
		for _, v := range row {
			sum += v
		}
		for j, v := range row {
			f := 0.0
			if sum > 0 {
				f = float64(v) / float64(sum)
			}
			f = math.Sqrt(f)
			c := shade(f)
			r := image.Rect(ox+j*cell, oy+i*cell, ox+(j+1)*cell, oy+(i+1)*cell)
			draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
			if showCounts && v > 0 {
				s := strconv.FormatInt(v, 10)
				if textW(s) <= cell-2 {
					tc := color.Color(color.Black)
					if f > 0.5 {
						tc = color.White
					}
					text(s, r.Min.X+(cell-textW(s))/2, r.Min.Y+cell/2+5, tc)
				}
			}
		}
	}
	// Frame around the matrix.
	frame := color.Gray{0x80}
	for x := ox - 1; x <= ox+n*cell; x++ {
		img.Set(x, oy-1, frame)
		img.Set(x, oy+n*cell, frame)
	}
	for y := oy - 1; y <= oy+n*cell; y++ {
		img.Set(ox-1, y, frame)
		img.Set(ox+n*cell, y, frame)
	}
	return img
}

// shade maps f in [0, 1] from white to dark blue.
func shade(f float64) color.RGBA {
	f = min(max(f, 0), 1)
	lerp := func(a, b float64) uint8 { return uint8(a + (b-a)*f + 0.5) }
	return color.RGBA{lerp(255, 8), lerp(255, 48), lerp(255, 107), 255}
}

// WriteConfusionPNG writes the report's confusion matrix as a PNG heat map
// to path, atomically (temporary file in the same folder, then rename).
func WriteConfusionPNG(path string, r *Report) error {
	title := fmt.Sprintf("confusion matrix, %d images, top-1 %s (rows: true, cols: predicted; shade = sqrt of row share)", r.Images, pct(r.Top1))
	var buf bytes.Buffer
	if err := png.Encode(&buf, ConfusionImage(r.Confusion, title)); err != nil {
		return fmt.Errorf("eval: encoding confusion matrix: %w", err)
	}
	return writeAtomic(path, buf.Bytes())
}

func writeAtomic(path string, b []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(b); err != nil {
		return fmt.Errorf("eval: writing %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("eval: writing %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("eval: writing %s: %w", path, err)
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	return nil
}
