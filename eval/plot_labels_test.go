package eval

import (
	"image"
	"image/color"
	"strings"
	"testing"
)

// TestConfusionImageLabels (issue 13): the confusion PNG names the classes
// beside the rows and is no wider than its matrix or its longest title line
// (a one-line title made a 10-class plot twice as wide as its matrix).
func TestConfusionImageLabels(t *testing.T) {
	n := 10
	conf := make([][]int64, n)
	for i := range conf {
		conf[i] = make([]int64, n)
		conf[i][i] = 90
		conf[i][(i+1)%n] = 10
	}
	labels := []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
	titles := []string{"confusion matrix, 1000 images, top-1 90.00%", "rows: true, cols: predicted; shade = sqrt of row share"}
	named := ConfusionImageLabels(conf, titles, labels)
	plain := ConfusionImageLabels(conf, titles, nil)
	matrix := n * 36
	if w := named.Bounds().Dx(); w > matrix+7*len("9 Ankle boot")+40 {
		t.Errorf("named plot %d px wide for a %d px matrix", w, matrix)
	}
	if w := plain.Bounds().Dx(); w > matrix+7*len(titles[1])/2+100 {
		t.Errorf("plain plot %d px wide for a %d px matrix", w, matrix)
	}
	// The names take ink left of the matrix that indices alone do not.
	if ink(named, 0, named.Bounds().Dx()-matrix-20) <= ink(plain, 0, plain.Bounds().Dx()-matrix-20) {
		t.Error("no class names beside the rows")
	}
	long := append([]string(nil), labels...)
	long[0] = strings.Repeat("x", 200)
	if w := ConfusionImageLabels(conf, titles, long).Bounds().Dx(); w > 1000 {
		t.Errorf("a 200-character label made the plot %d px wide", w)
	}
}

// ink counts non-white pixels in columns [x0, x1) below the titles.
func ink(img *image.RGBA, x0, x1 int) int {
	n := 0
	for y := 40; y < img.Bounds().Dy(); y++ {
		for x := x0; x < x1; x++ {
			if img.At(x, y) != (color.RGBA{255, 255, 255, 255}) {
				n++
			}
		}
	}
	return n
}
