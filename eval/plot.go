package eval

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"strconv"

	"github.com/bitrun/bitrun/internal/plot"
)

// ConfusionImage renders a confusion matrix (rows true, columns predicted)
// as a heat map: each cell is shaded by its share of the row, from white (0)
// to dark blue (1) on a square-root scale so that small confusions show, with
// counts written in the cells when they fit
// and class indices along both axes.
func ConfusionImage(conf [][]int64, title string) *image.RGBA {
	return ConfusionImageLabels(conf, []string{title}, nil)
}

// maxLabelChars bounds the class names written beside the rows.
const maxLabelChars = 18

// ConfusionImageLabels is ConfusionImage with the title on several lines
// (the image is as wide as the matrix or its longest title line) and, when
// labels has one name per class, "index name" beside each row.
func ConfusionImageLabels(conf [][]int64, titles []string, labels []string) *image.RGBA {
	n := len(conf)
	l := confusionLayout(n, titles, labels)
	cell, showCounts, named, rowNames := l.cell, l.cell >= 28, l.named, l.rowNames
	img := plot.New(l.w, l.h)
	text, textW := img.Text, plot.TextWidth
	for i, t := range titles {
		text(t, 8, 15+15*i, color.Black)
	}
	ox, oy := l.ox, l.oy
	text("predicted", ox, l.titleH+11, color.Gray{0x60})
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
		if !named {
			text(s, ox-4-textW(s), oy+i*cell+cell/2+5, color.Black)
		}
	}
	if named { // every row: "index name"
		for i, s := range rowNames {
			text(s, ox-4-textW(s), oy+i*cell+cell/2+5, color.Black)
		}
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
			img.Fill(r, c)
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
	img.Frame(image.Rect(ox-1, oy-1, ox+n*cell, oy+n*cell), color.Gray{0x80})
	return img.RGBA
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
	titles := []string{
		fmt.Sprintf("confusion matrix, %d images, top-1 %s", r.Images, pct(r.Top1)),
		"rows: true, cols: predicted; shade = sqrt of row share",
	}
	img := plot.Canvas{RGBA: ConfusionImageLabels(r.Confusion, titles, r.Labels)}
	if err := img.WritePNG(path); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	return nil
}

// plotLayout is where ConfusionImageLabels puts things.
type plotLayout struct {
	cell, margin, titleH int
	ox, oy               int // top-left corner of the matrix
	w, h                 int
	named                bool
	rowNames             []string
}

func confusionLayout(n int, titles, labels []string) plotLayout {
	l := plotLayout{cell: 36, margin: 40} // margin: left and top, for indices
	switch {
	case n > 200:
		l.cell = max(1, 1200/n)
	case n > 40:
		l.cell = 6
	case n > 20:
		l.cell = 16
	}
	l.named = len(labels) == n && n > 0 && l.cell >= 13
	l.rowNames = make([]string, n)
	left := l.margin
	if l.named {
		for i, s := range labels {
			if len(s) > maxLabelChars {
				s = s[:maxLabelChars-1] + "~"
			}
			l.rowNames[i] = strconv.Itoa(i) + " " + s
			left = max(left, 7*len(l.rowNames[i])+10)
		}
	}
	l.titleH = 8 + 15*len(titles)
	l.ox, l.oy = left, l.titleH+l.margin
	l.w = left + n*l.cell + 16
	l.h = l.titleH + l.margin + n*l.cell + 16
	for _, t := range titles {
		l.w = max(l.w, 7*len(t)+16)
	}
	return l
}
