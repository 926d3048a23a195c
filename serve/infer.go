package serve

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"slices"
	"strconv"
	"sync"

	"github.com/bitrun/bitrun/api"
	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/internal/finite"
	"github.com/bitrun/bitrun/internal/topk"
)

// KServe v2 inference protocol, as bitrun serves it: one input, either
// FP32 [N, C, H, W] matching the model, or UINT8 image pixels ([N, H, W, C]
// by default, [N, C, H, W] with the parameter "layout": "NCHW", or one image
// [H, W, C]) that get the model's preprocessing; outputs as FP32, or as
// BYTES "score:index:label" strings with the classification extension;
// tensor data as JSON or with the binary tensor data extension.

// parsedInfer is a validated infer request.
type parsedInfer struct {
	id      string
	rows    int
	input   []float32 // rows × row size
	outputs []outputSpec
}

// outputSpec is one output to answer.
type outputSpec struct {
	name   string
	binary bool // binary tensor data
	class  int  // classification: the top class count, 0 for the raw tensor
}

// parseInfer reads and validates an infer request against the classifier:
// the JSON header (and the binary data after it, when headerLength is set),
// the input's name, datatype, shape (1 <= N <= MaxImages) and data, and the
// requested outputs with their parameters.
func (s *Server) parseInfer(ctx context.Context, body []byte, headerLength string, c *Classifier) (*parsedInfer, error) {
	head, rest, err := api.SplitBody(body, headerLength)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(head))
	dec.DisallowUnknownFields()
	var req api.InferRequest
	if err := dec.Decode(&req); err != nil {
		return nil, bodyError("infer request JSON", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the infer request JSON", ErrBadRequest)
	}
	if err := api.AttachBinary(req.Inputs, rest); err != nil {
		return nil, err
	}
	return s.checkInfer(ctx, &req, c)
}

// checkInfer validates a decoded infer request (HTTP or gRPC) against the
// classifier: the input's name, datatype, shape (1 <= N <= MaxImages) and
// data, and the requested outputs with their parameters; UINT8 pixels get
// the model's preprocessing here.
func (s *Server) checkInfer(ctx context.Context, req *api.InferRequest, c *Classifier) (*parsedInfer, error) {
	var err error
	if len(req.Outputs) > len(c.info.Outputs) {
		return nil, fmt.Errorf("%w: %d outputs requested; the model has %d (%v)", ErrBadRequest, len(req.Outputs), len(c.info.Outputs), c.info.Outputs)
	}
	if len(req.Inputs) != 1 {
		return nil, fmt.Errorf("%w: want exactly 1 input tensor (%q), got %d", ErrBadRequest, c.info.Input, len(req.Inputs))
	}
	in := &req.Inputs[0]
	if in.Name != c.info.Input {
		return nil, fmt.Errorf("%w: unknown input %q; the model's input is %q", ErrBadRequest, in.Name, c.info.Input)
	}
	p := &parsedInfer{id: req.ID}
	switch in.Datatype {
	case "FP32":
		err = s.fp32Input(in, c, p)
	case "UINT8":
		err = s.uint8Input(ctx, in, c, p)
	default:
		err = fmt.Errorf("%w: input %q has datatype %q; want FP32 (preprocessed) or UINT8 (image pixels)", ErrBadRequest, in.Name, in.Datatype)
	}
	if err != nil {
		return nil, err
	}
	allBinary, err := req.Parameters.Bool(api.ParamBinaryDataOutput)
	if err != nil {
		return nil, err
	}
	for _, o := range req.Outputs {
		if !slices.Contains(c.info.Outputs, o.Name) {
			return nil, fmt.Errorf("%w: unknown output %q (outputs: %v)", ErrBadRequest, o.Name, c.info.Outputs)
		}
		if slices.ContainsFunc(p.outputs, func(q outputSpec) bool { return q.name == o.Name }) {
			return nil, fmt.Errorf("%w: output %q requested twice", ErrBadRequest, o.Name)
		}
		spec := outputSpec{name: o.Name, binary: allBinary}
		if _, set := o.Parameters[api.ParamBinaryData]; set {
			if spec.binary, err = o.Parameters.Bool(api.ParamBinaryData); err != nil {
				return nil, err
			}
		}
		n, set, err := o.Parameters.Int(api.ParamClassification)
		if err != nil {
			return nil, err
		}
		if set {
			shape := c.outShape[o.Name]
			if len(shape) != 2 {
				return nil, fmt.Errorf("%w: output %q has shape %v; classification needs [N, classes]", ErrBadRequest, o.Name, shape)
			}
			if n < 1 || n > shape[1] {
				return nil, fmt.Errorf("%w: output %q: classification %d; allowed 1 to %d (its classes)", ErrBadRequest, o.Name, n, shape[1])
			}
			spec.class = int(n)
		}
		p.outputs = append(p.outputs, spec)
	}
	if len(p.outputs) == 0 {
		for _, name := range c.info.Outputs {
			p.outputs = append(p.outputs, outputSpec{name: name, binary: allBinary})
		}
	}
	return p, nil
}

// fp32Input reads a preprocessed FP32 input [N, C, R, R].
func (s *Server) fp32Input(in *api.Tensor, c *Classifier, p *parsedInfer) error {
	want := []int64{-1, int64(c.pre.Channels), int64(c.pre.Resolution), int64(c.pre.Resolution)}
	if len(in.Shape) != 4 || in.Shape[1] != want[1] || in.Shape[2] != want[2] || in.Shape[3] != want[3] {
		return fmt.Errorf("%w: input %q has shape %v; want [N %d %d %d]", ErrBadRequest, in.Name, in.Shape, want[1], want[2], want[3])
	}
	if in.Shape[0] < 1 || in.Shape[0] > int64(s.cfg.MaxImages) {
		return fmt.Errorf("%w: batch of %d images; allowed 1 to %d (the max-images limit)", ErrTooManyImages, in.Shape[0], s.cfg.MaxImages)
	}
	p.rows = int(in.Shape[0])
	size := p.rows * c.pre.Size()
	if in.Raw != nil {
		if len(in.Raw) != 4*size {
			return fmt.Errorf("%w: input %q: %d binary bytes; the shape needs %d", ErrBadRequest, in.Name, len(in.Raw), 4*size)
		}
		x, err := in.Float32s()
		if err != nil {
			return err
		}
		p.input = x
		return nil
	}
	x, err := parseNumbers(in.Data, size)
	if err != nil {
		return fmt.Errorf("%w: input %q data: %w", ErrBadRequest, in.Name, err)
	}
	p.input = x
	return nil
}

// uint8Input reads image pixels (NHWC, NCHW or HWC) and applies the model's
// preprocessing to each image, exactly as predict does after decoding.
func (s *Server) uint8Input(ctx context.Context, in *api.Tensor, c *Classifier, p *parsedInfer) error {
	layout, err := in.Parameters.String(api.ParamLayout)
	if err != nil {
		return err
	}
	shape := in.Shape
	if len(shape) == 3 && layout != "NCHW" {
		shape = append([]int64{1}, shape...)
	}
	if len(shape) != 4 {
		return fmt.Errorf("%w: UINT8 input %q has shape %v; want [N H W C] (layout NHWC, the default), [N C H W] (layout NCHW) or [H W C]", ErrBadRequest, in.Name, in.Shape)
	}
	n, h, w, ch := shape[0], shape[1], shape[2], shape[3]
	switch layout {
	case "", "NHWC":
	case "NCHW":
		ch, h, w = shape[1], shape[2], shape[3]
	default:
		return fmt.Errorf("%w: input %q layout %q; want NHWC or NCHW", ErrBadRequest, in.Name, layout)
	}
	if ch != 1 && ch != 3 {
		return fmt.Errorf("%w: UINT8 input %q has %d channels; want 1 or 3 (shape %v, layout %s)", ErrBadRequest, in.Name, ch, in.Shape, cmp.Or(layout, "NHWC"))
	}
	if h < 1 || w < 1 {
		return fmt.Errorf("%w: UINT8 input %q has an empty image (shape %v)", ErrBadRequest, in.Name, in.Shape)
	}
	if h > int64(s.cfg.MaxPixels) || w > int64(s.cfg.MaxPixels) || h*w > int64(s.cfg.MaxPixels) {
		return fmt.Errorf("%w: image is %dx%d = %d pixels, over the max-pixels limit of %d", ErrTooManyPixels, w, h, w*h, s.cfg.MaxPixels)
	}
	if n < 1 || n > int64(s.cfg.MaxImages) {
		return fmt.Errorf("%w: batch of %d images; allowed 1 to %d (the max-images limit)", ErrTooManyImages, n, s.cfg.MaxImages)
	}
	var px []byte
	if in.Raw != nil {
		px = in.Raw
	} else {
		v, err := parseNumbers(in.Data, int(n*h*w*ch))
		if err != nil {
			return fmt.Errorf("%w: input %q data: %w", ErrBadRequest, in.Name, err)
		}
		px = make([]byte, len(v))
		for i, f := range v {
			if f < 0 || f > 255 || f != float32(int(f)) {
				return fmt.Errorf("%w: input %q value %d is %v; UINT8 holds integers 0 to 255", ErrBadRequest, in.Name, i, f)
			}
			px[i] = byte(f)
		}
	}
	if int64(len(px)) != n*h*w*ch {
		return fmt.Errorf("%w: input %q: %d bytes; the shape needs %d", ErrBadRequest, in.Name, len(px), n*h*w*ch)
	}
	p.rows = int(n)
	size := c.pre.Size()
	p.input = make([]float32, p.rows*size)
	per := int(h * w * ch)
	for i := range p.rows {
		err := s.decoding(ctx, h*w, func() error {
			img := pixelImage(px[i*per:(i+1)*per], int(h), int(w), int(ch), layout == "NCHW")
			data.EvalTensor(img, c.pre.Resolution, c.pre.Channels, c.pre.norm, p.input[i*size:(i+1)*size])
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// pixelImage wraps one image's pixels (HWC, or CHW when planar) as an
// image.Image for data.EvalTensor.
func pixelImage(px []byte, h, w, ch int, planar bool) image.Image {
	if ch == 1 {
		return &image.Gray{Pix: px, Stride: w, Rect: image.Rect(0, 0, w, h)}
	}
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	plane := h * w
	for i := range plane {
		if planar {
			m.Pix[4*i], m.Pix[4*i+1], m.Pix[4*i+2] = px[i], px[plane+i], px[2*plane+i]
		} else {
			m.Pix[4*i], m.Pix[4*i+1], m.Pix[4*i+2] = px[3*i], px[3*i+1], px[3*i+2]
		}
		m.Pix[4*i+3] = 255
	}
	return m
}

// inferAnswer builds the infer answer: each requested output as FP32 (JSON
// or binary) or, with classification, as BYTES "score:index:label" strings
// of its top classes (score: the output value, as Triton reports it; ties
// to the lower index). headerLen is the JSON length when some output is
// binary, else -1. JSON cannot carry NaN or Inf: such an output is
// ErrNonFinite.
func (c *Classifier) inferAnswer(req *parsedInfer, outs []map[string][]float32) (body []byte, headerLen int, err error) {
	resp, err := c.inferResponse(req, outs)
	if err != nil {
		return nil, 0, err
	}
	b, headerLen, err := api.EncodeBody(resp, resp.Outputs)
	if err != nil {
		return nil, 0, fmt.Errorf("serve: encoding the infer answer: %w", err)
	}
	if headerLen < 0 {
		b = append(b, '\n')
	}
	return b, headerLen, nil
}

// inferResponse builds the answer's tensors (see inferAnswer): binary
// outputs carry Raw, the others JSON Data.
func (c *Classifier) inferResponse(req *parsedInfer, outs []map[string][]float32) (resp api.InferResponse, err error) {
	resp = api.InferResponse{ModelName: c.name, ModelVersion: c.version, ID: req.id}
	for _, spec := range req.outputs {
		o := api.Tensor{Name: spec.name}
		if spec.class > 0 {
			o.Datatype = "BYTES"
			o.Shape = []int64{int64(req.rows), int64(spec.class)}
			var strs []string
			for _, row := range outs {
				strs = append(strs, c.classify(row[spec.name], spec.class)...)
			}
			if spec.binary {
				o.Raw = api.EncodeStrings(strs)
			} else if o.Data, err = json.Marshal(strs); err != nil {
				return resp, fmt.Errorf("serve: encoding the infer answer: %w", err)
			}
		} else {
			o.Datatype = "FP32"
			o.Shape = append([]int64{int64(req.rows)}, c.outShape[spec.name][1:]...)
			var vals []float32
			for _, row := range outs {
				vals = append(vals, row[spec.name]...)
			}
			if spec.binary {
				o.Raw = api.BinaryFP32(spec.name, nil, vals).Raw
			} else {
				if i := finite.Index(vals); i >= 0 {
					return resp, fmt.Errorf("%w: output %q value %d is %v", ErrNonFinite, spec.name, i, vals[i])
				}
				if o.Data, err = json.Marshal(vals); err != nil {
					return resp, fmt.Errorf("serve: encoding the infer answer: %w", err)
				}
			}
		}
		if o.Raw != nil {
			o.Parameters = api.Parameters{api.ParamBinaryDataSize: len(o.Raw)}
		}
		resp.Outputs = append(resp.Outputs, o)
	}
	return resp, nil
}

// classify formats the top n entries of one output row as Triton's
// classification extension does: "value:index:label".
func (c *Classifier) classify(row []float32, n int) []string {
	idx := topk.Indices(row, n)
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = strconv.FormatFloat(float64(row[j]), 'f', 6, 32) + ":" + strconv.Itoa(j) + ":" + c.label(j)
	}
	return out
}

// parseNumbers reads a JSON array of numbers, flat or nested (row-major),
// holding exactly want values, without building an interface tree. It
// allocates only for values the text can hold (n numbers take at least
// 2n+1 bytes), not for a shape's declared size.
func parseNumbers(raw json.RawMessage, want int) ([]float32, error) {
	s := bytes.TrimSpace(raw)
	if len(s) == 0 || s[0] != '[' {
		return nil, fmt.Errorf("want a JSON array of numbers")
	}
	out := make([]float32, 0, min(want, (len(s)-1)/2))
	depth := 0
	expectValue := true // after '[' or ','
	for i := 0; i < len(s); {
		switch ch := s[i]; {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			i++
		case ch == '[':
			if !expectValue {
				return nil, fmt.Errorf("unexpected '[' at offset %d", i)
			}
			depth++
			if depth > 8 {
				return nil, fmt.Errorf("arrays nested deeper than 8")
			}
			i++
		case ch == ']':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unbalanced ']' at offset %d", i)
			}
			expectValue = false
			i++
			if depth == 0 {
				if rest := bytes.TrimSpace(s[i:]); len(rest) != 0 {
					return nil, fmt.Errorf("trailing data after the array")
				}
			}
		case ch == ',':
			if expectValue || depth == 0 {
				return nil, fmt.Errorf("unexpected ',' at offset %d", i)
			}
			expectValue = true
			i++
		case ch == '-' || ch >= '0' && ch <= '9':
			if !expectValue || depth == 0 {
				return nil, fmt.Errorf("unexpected number at offset %d", i)
			}
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'e' || s[j] == 'E' || s[j] == '+' || s[j] == '-') {
				j++
			}
			v, err := strconv.ParseFloat(string(s[i:j]), 32)
			if err != nil {
				return nil, fmt.Errorf("bad number %q at offset %d", s[i:j], i)
			}
			if len(out) == want {
				return nil, fmt.Errorf("more than %d values", want)
			}
			out = append(out, float32(v))
			expectValue = false
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q at offset %d; only numbers are allowed", ch, i)
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unterminated array")
	}
	if len(out) != want {
		return nil, fmt.Errorf("%d values; the shape needs %d", len(out), want)
	}
	return out, nil
}

// inferRows sends n rows of x through the batcher concurrently (so they can
// share a batch) and returns each row's outputs in order.
func (c *Classifier) inferRows(ctx context.Context, x []float32, n int) ([]map[string][]float32, error) {
	size := c.pre.Size()
	if n == 1 {
		out, err := c.infer(ctx, x[:size])
		if err != nil {
			return nil, err
		}
		return []map[string][]float32{out}, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	outs := make([]map[string][]float32, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			outs[i], errs[i] = c.infer(ctx, x[i*size:(i+1)*size])
			if errs[i] != nil {
				cancel() // the others are pointless now
			}
		})
	}
	wg.Wait()
	// The root cause, not the cancellations it triggered.
	var first error
	for _, err := range errs {
		if err != nil && (first == nil || errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled)) {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	return outs, nil
}
