// Package plot draws the raster charts bitrun writes beside its results (the
// training curve of a run, the confusion matrix of an evaluation): a white
// canvas with text in the standard 7x13 face, lines and filled rectangles,
// written as a PNG file atomically.
package plot

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/bitrun/bitrun/internal/atomicfile"
)

// Canvas is an RGBA image to draw a chart on.
type Canvas struct {
	*image.RGBA
}

// New returns a white canvas of w x h pixels.
func New(w, h int) *Canvas {
	c := &Canvas{image.NewRGBA(image.Rect(0, 0, w, h))}
	c.Fill(c.Bounds(), color.White)
	return c
}

// Fill paints r with col.
func (c *Canvas) Fill(r image.Rectangle, col color.Color) {
	draw.Draw(c.RGBA, r, image.NewUniform(col), image.Point{}, draw.Src)
}

// Text writes s with its baseline starting at (x, y).
func (c *Canvas) Text(s string, x, y int, col color.Color) {
	d := font.Drawer{Dst: c.RGBA, Src: image.NewUniform(col), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// TextWidth is the width of s in pixels as Text writes it.
func TextWidth(s string) int {
	return font.MeasureString(basicfont.Face7x13, s).Round()
}

// Line draws a straight segment from (x0, y0) to (x1, y1) (Bresenham).
func (c *Canvas) Line(x0, y0, x1, y1 int, col color.RGBA) {
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
		c.SetRGBA(x0, y0, col)
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

// Frame draws the one-pixel outline of r's border (its last row and column
// included).
func (c *Canvas) Frame(r image.Rectangle, col color.Color) {
	for x := r.Min.X; x <= r.Max.X; x++ {
		c.Set(x, r.Min.Y, col)
		c.Set(x, r.Max.Y, col)
	}
	for y := r.Min.Y; y <= r.Max.Y; y++ {
		c.Set(r.Min.X, y, col)
		c.Set(r.Max.X, y, col)
	}
}

// WritePNG replaces path atomically with the canvas as a PNG.
func (c *Canvas) WritePNG(path string) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, c.RGBA); err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return atomicfile.Write(path, buf.Bytes())
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
