package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
)

// KServe v2 inference protocol (JSON), the subset bitrun serves: one FP32
// input of shape [N, C, H, W] matching the model, outputs returned as FP32.

type inferRequest struct {
	ID         string               `json:"id,omitempty"`
	Parameters map[string]any       `json:"parameters,omitempty"`
	Inputs     []inferInput         `json:"inputs"`
	Outputs    []inferRequestOutput `json:"outputs,omitempty"`
}

type inferInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
}

type inferRequestOutput struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// binaryData reports whether KServe parameters ask for the binary tensor
// extension, which bitrun does not implement.
func binaryData(params map[string]any) bool {
	_, size := params["binary_data_size"]
	b, _ := params["binary_data"].(bool)
	return size || b
}

type inferResponse struct {
	ModelName    string        `json:"model_name"`
	ModelVersion string        `json:"model_version,omitempty"`
	ID           string        `json:"id,omitempty"`
	Outputs      []inferOutput `json:"outputs"`
}

type inferOutput struct {
	Name     string    `json:"name"`
	Datatype string    `json:"datatype"`
	Shape    []int64   `json:"shape"`
	Data     []float32 `json:"data"`
}

// parsedInfer is a validated infer request.
type parsedInfer struct {
	id      string
	rows    int
	input   []float32 // rows × row size
	outputs []string
}

// parseInfer reads and validates a KServe v2 infer request against the
// classifier: input name, FP32, shape [N, C, R, R] with 1 <= N <= maxImages,
// data length, requested outputs.
func parseInfer(body []byte, c *Classifier, maxImages int) (*parsedInfer, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req inferRequest
	if err := dec.Decode(&req); err != nil {
		return nil, bodyError("infer request JSON", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the infer request JSON", ErrBadRequest)
	}
	if len(req.Outputs) > len(c.info.Outputs) {
		return nil, fmt.Errorf("%w: %d outputs requested; the model has %d (%v)", ErrBadRequest, len(req.Outputs), len(c.info.Outputs), c.info.Outputs)
	}
	if len(req.Inputs) != 1 {
		return nil, fmt.Errorf("%w: want exactly 1 input tensor (%q), got %d", ErrBadRequest, c.info.Input, len(req.Inputs))
	}
	in := req.Inputs[0]
	if binaryData(in.Parameters) || binaryData(req.Parameters) {
		return nil, fmt.Errorf("%w: the binary tensor extension is not supported; send JSON data", ErrBadRequest)
	}
	if in.Name != c.info.Input {
		return nil, fmt.Errorf("%w: unknown input %q; the model's input is %q", ErrBadRequest, in.Name, c.info.Input)
	}
	if in.Datatype != "FP32" {
		return nil, fmt.Errorf("%w: input %q has datatype %q; want FP32", ErrBadRequest, in.Name, in.Datatype)
	}
	want := []int64{-1, int64(c.pre.Channels), int64(c.pre.Resolution), int64(c.pre.Resolution)}
	if len(in.Shape) != 4 || in.Shape[1] != want[1] || in.Shape[2] != want[2] || in.Shape[3] != want[3] {
		return nil, fmt.Errorf("%w: input %q has shape %v; want [N %d %d %d]", ErrBadRequest, in.Name, in.Shape, want[1], want[2], want[3])
	}
	if in.Shape[0] < 1 || in.Shape[0] > int64(maxImages) {
		return nil, fmt.Errorf("%w: batch of %d images; allowed 1 to %d (the max-images limit)", ErrTooManyImages, in.Shape[0], maxImages)
	}
	rows := int(in.Shape[0])
	x, err := parseNumbers(in.Data, rows*c.pre.Size())
	if err != nil {
		return nil, fmt.Errorf("%w: input %q data: %w", ErrBadRequest, in.Name, err)
	}
	p := &parsedInfer{id: req.ID, rows: rows, input: x}
	for _, o := range req.Outputs {
		if binaryData(o.Parameters) {
			return nil, fmt.Errorf("%w: output %q: binary_data is not supported", ErrBadRequest, o.Name)
		}
		found := false
		for _, name := range c.info.Outputs {
			found = found || name == o.Name
		}
		if !found {
			return nil, fmt.Errorf("%w: unknown output %q (outputs: %v)", ErrBadRequest, o.Name, c.info.Outputs)
		}
		if slices.Contains(p.outputs, o.Name) {
			return nil, fmt.Errorf("%w: output %q requested twice", ErrBadRequest, o.Name)
		}
		p.outputs = append(p.outputs, o.Name)
	}
	if len(p.outputs) == 0 {
		p.outputs = c.info.Outputs
	}
	return p, nil
}

// encodeInferResponse encodes resp, failing with ErrNonFinite when an
// output holds NaN or Inf (JSON has no numbers for them).
func encodeInferResponse(resp inferResponse) ([]byte, error) {
	for _, o := range resp.Outputs {
		for i, v := range o.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("%w: output %q value %d is %v", ErrNonFinite, o.Name, i, v)
			}
		}
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("serve: encoding the infer answer: %w", err)
	}
	return append(b, '\n'), nil
}

// parseNumbers reads a JSON array of numbers, flat or nested (row-major),
// holding exactly want values, without building an interface tree.
func parseNumbers(raw json.RawMessage, want int) ([]float32, error) {
	s := bytes.TrimSpace(raw)
	if len(s) == 0 || s[0] != '[' {
		return nil, fmt.Errorf("want a JSON array of numbers")
	}
	out := make([]float32, 0, want)
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
