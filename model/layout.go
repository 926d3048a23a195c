package model

import (
	"fmt"
	"strings"

	"github.com/bitrun/bitrun/nn"
)

// Stage summarises one stage of the network for a square input of a given
// resolution: the root conv, the max-pool, the four blocks and the head.
type Stage struct {
	Name   string `json:"name"`          // "root", "pool", "block1".."block4", "head"
	Units  int    `json:"units"`         // bottleneck units (blocks only)
	In     int    `json:"in"`            // input channels
	Mid    int    `json:"mid,omitempty"` // bottleneck width (blocks only)
	Out    int    `json:"out"`           // output channels (classes for the head)
	Stride int    `json:"stride"`        // spatial stride of the stage
	Size   int    `json:"size"`          // output height = width
	Params int64  `json:"params"`        // scalar parameters
	FLOPs  int64  `json:"flops"`         // convolution multiply-adds x2, one image
}

// Stages lays out c for a square input of resolution pixels (at least 1). The
// FLOP counts cover the convolutions and the head (2 per multiply-add), the
// convention of the BiT paper's figures; GroupNorm, ReLU and pooling are not
// counted.
func (c Config) Stages(resolution int) ([]Stage, error) {
	if resolution < 1 {
		return nil, fmt.Errorf("model: resolution must be positive, got %d", resolution)
	}
	params := map[string]int64{}
	for _, s := range c.Spec() {
		n := int64(1)
		for _, d := range s.Shape {
			n *= int64(d)
		}
		stage := "head"
		if s.Name == RootKernel {
			stage = "root"
		} else if rest, ok := strings.CutPrefix(s.Name, "resnet/block"); ok && len(rest) > 0 {
			stage = "block" + rest[:1]
		}
		params[stage] += n
	}
	conv := func(size, k, in, out int) int64 {
		return 2 * int64(size) * int64(size) * int64(k*k) * int64(in) * int64(out)
	}

	size := nn.ConvOutSize(resolution, 7, 2, 3)
	stages := []Stage{{Name: "root", In: 3, Out: c.RootWidth, Stride: 2, Size: size,
		Params: params["root"], FLOPs: conv(size, 7, 3, c.RootWidth)}}
	size = nn.ConvOutSize(size+2, 3, 2, 0)
	stages = append(stages, Stage{Name: "pool", In: c.RootWidth, Out: c.RootWidth, Stride: 2, Size: size})
	in := c.RootWidth
	for b := 0; b < 4; b++ {
		out, mid, stride := c.Widths[b], c.Widths[b]/4, BlockStride(b)
		name := fmt.Sprintf("block%d", b+1)
		st := Stage{Name: name, Units: c.Units[b], In: in, Mid: mid, Out: out, Stride: stride, Params: params[name]}
		for u := 0; u < c.Units[b]; u++ {
			s := 1
			if u == 0 {
				s = stride
			}
			outSize := nn.ConvOutSize(size, 3, s, 1)
			st.FLOPs += conv(size, 1, in, mid) + conv(outSize, 3, mid, mid) + conv(outSize, 1, mid, out)
			if c.HasProj(b, u) {
				st.FLOPs += conv(outSize, 1, in, out)
			}
			size, in = outSize, out
		}
		st.Size = size
		stages = append(stages, st)
	}
	stages = append(stages, Stage{Name: "head", In: in, Out: c.Classes, Stride: 1, Size: 1,
		Params: params["head"], FLOPs: conv(1, 1, in, c.Classes)})
	return stages, nil
}
