package api

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrMalformed is wrapped by the errors of this package's decoders: a
// binary tensor body or a parameter that does not follow the protocol.
var ErrMalformed = errors.New("api: malformed request")

// Header and parameter names of the binary tensor data extension and the
// classification extension.
const (
	// HeaderInferenceContentLength gives the length of the JSON header of a
	// body that carries binary tensor data after it.
	HeaderInferenceContentLength = "Inference-Header-Content-Length"
	// ParamBinaryDataSize (on a tensor) is the byte length of its binary data.
	ParamBinaryDataSize = "binary_data_size"
	// ParamBinaryData (on a requested output) asks for its data in binary.
	ParamBinaryData = "binary_data"
	// ParamBinaryDataOutput (on a request) asks for every output in binary.
	ParamBinaryDataOutput = "binary_data_output"
	// ParamClassification (on a requested output) asks for its top N classes
	// as BYTES "score:index:label" strings.
	ParamClassification = "classification"
	// ParamLayout (on a UINT8 image input) is "NHWC" (the default) or "NCHW".
	ParamLayout = "layout"
)

// Parameters are the free-form parameters of a request, tensor or output.
type Parameters map[string]any

// Int returns an integer parameter; ok is false when it is absent.
func (p Parameters) Int(key string) (v int64, ok bool, err error) {
	x, ok := p[key]
	if !ok {
		return 0, false, nil
	}
	switch n := x.(type) {
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return 0, true, fmt.Errorf("%w: parameter %s=%v is not an integer", ErrMalformed, key, n)
		}
		return int64(n), true, nil
	case int:
		return int64(n), true, nil
	case int64:
		return n, true, nil
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			return 0, true, fmt.Errorf("%w: parameter %s=%v is not an integer", ErrMalformed, key, n)
		}
		return i, true, nil
	}
	return 0, true, fmt.Errorf("%w: parameter %s=%v is not an integer", ErrMalformed, key, x)
}

// Bool returns a boolean parameter (false when absent).
func (p Parameters) Bool(key string) (bool, error) {
	x, ok := p[key]
	if !ok {
		return false, nil
	}
	b, ok := x.(bool)
	if !ok {
		return false, fmt.Errorf("%w: parameter %s=%v is not a boolean", ErrMalformed, key, x)
	}
	return b, nil
}

// String returns a string parameter ("" when absent).
func (p Parameters) String(key string) (string, error) {
	x, ok := p[key]
	if !ok {
		return "", nil
	}
	s, ok := x.(string)
	if !ok {
		return "", fmt.Errorf("%w: parameter %s=%v is not a string", ErrMalformed, key, x)
	}
	return s, nil
}

// Tensor is a v2 tensor, input or output. Its data is either JSON (Data:
// a flat or nested row-major array) or binary (Raw, little-endian, with
// Parameters[ParamBinaryDataSize] = len(Raw)); Raw never appears in JSON.
type Tensor struct {
	Name       string          `json:"name"`
	Datatype   string          `json:"datatype"`
	Shape      []int64         `json:"shape"`
	Parameters Parameters      `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	Raw        []byte          `json:"-"`
}

// RequestedOutput names an output the request wants, with its parameters
// (ParamBinaryData, ParamClassification).
type RequestedOutput struct {
	Name       string     `json:"name"`
	Parameters Parameters `json:"parameters,omitempty"`
}

// InferRequest is the body of POST /v2/models/{name}[/versions/{v}]/infer.
// Outputs empty means every output.
type InferRequest struct {
	ID         string            `json:"id,omitempty"`
	Parameters Parameters        `json:"parameters,omitempty"`
	Inputs     []Tensor          `json:"inputs"`
	Outputs    []RequestedOutput `json:"outputs,omitempty"`
}

// InferResponse is the answer of an infer request.
type InferResponse struct {
	ModelName    string     `json:"model_name"`
	ModelVersion string     `json:"model_version,omitempty"`
	ID           string     `json:"id,omitempty"`
	Parameters   Parameters `json:"parameters,omitempty"`
	Outputs      []Tensor   `json:"outputs"`
}

// Output returns the output tensor with the given name, or nil.
func (r *InferResponse) Output(name string) *Tensor {
	for i := range r.Outputs {
		if r.Outputs[i].Name == name {
			return &r.Outputs[i]
		}
	}
	return nil
}

// FP32 returns an FP32 tensor carrying data as JSON.
func FP32(name string, shape []int64, data []float32) Tensor {
	b, _ := json.Marshal(data) // cannot fail for finite values; NaN is the caller's bug
	return Tensor{Name: name, Datatype: "FP32", Shape: shape, Data: b}
}

// BinaryFP32 returns an FP32 tensor carrying data with the binary tensor
// data extension.
func BinaryFP32(name string, shape []int64, data []float32) Tensor {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return binaryTensor(name, "FP32", shape, raw)
}

// Uint8 returns a UINT8 tensor (image pixels, for example) carrying data as
// JSON numbers, or in binary when bin is true.
func Uint8(name string, shape []int64, data []byte, bin bool) Tensor {
	if bin {
		return binaryTensor(name, "UINT8", shape, append([]byte(nil), data...))
	}
	var b strings.Builder
	b.Grow(4 * len(data))
	b.WriteByte('[')
	for i, v := range data {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(v)))
	}
	b.WriteByte(']')
	return Tensor{Name: name, Datatype: "UINT8", Shape: shape, Data: json.RawMessage(b.String())}
}

func binaryTensor(name, datatype string, shape []int64, raw []byte) Tensor {
	return Tensor{Name: name, Datatype: datatype, Shape: shape, Raw: raw, Parameters: Parameters{ParamBinaryDataSize: len(raw)}}
}

// Float32s returns the data of an FP32 tensor, from Raw or Data.
func (t *Tensor) Float32s() ([]float32, error) {
	if t.Datatype != "FP32" {
		return nil, fmt.Errorf("%w: tensor %q is %s, not FP32", ErrMalformed, t.Name, t.Datatype)
	}
	if t.Raw != nil {
		if len(t.Raw)%4 != 0 {
			return nil, fmt.Errorf("%w: tensor %q has %d binary bytes, not a multiple of 4", ErrMalformed, t.Name, len(t.Raw))
		}
		out := make([]float32, len(t.Raw)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Raw[4*i:]))
		}
		return out, nil
	}
	var out []float32
	if err := json.Unmarshal(t.Data, &out); err != nil {
		return nil, fmt.Errorf("%w: tensor %q data: %w", ErrMalformed, t.Name, err)
	}
	return out, nil
}

// Uint8s returns the data of a UINT8 tensor, from Raw or Data.
func (t *Tensor) Uint8s() ([]byte, error) {
	if t.Datatype != "UINT8" {
		return nil, fmt.Errorf("%w: tensor %q is %s, not UINT8", ErrMalformed, t.Name, t.Datatype)
	}
	if t.Raw != nil {
		return t.Raw, nil
	}
	var v []uint16
	if err := json.Unmarshal(t.Data, &v); err != nil {
		return nil, fmt.Errorf("%w: tensor %q data: %w", ErrMalformed, t.Name, err)
	}
	out := make([]byte, len(v))
	for i, x := range v {
		if x > 255 {
			return nil, fmt.Errorf("%w: tensor %q value %d is over 255", ErrMalformed, t.Name, x)
		}
		out[i] = byte(x)
	}
	return out, nil
}

// Strings returns the elements of a BYTES tensor (classification answers),
// from Raw (each element a 4-byte little-endian length, then its bytes) or
// Data (a JSON array of strings).
func (t *Tensor) Strings() ([]string, error) {
	if t.Datatype != "BYTES" {
		return nil, fmt.Errorf("%w: tensor %q is %s, not BYTES", ErrMalformed, t.Name, t.Datatype)
	}
	if t.Raw == nil {
		var out []string
		if err := json.Unmarshal(t.Data, &out); err != nil {
			return nil, fmt.Errorf("%w: tensor %q data: %w", ErrMalformed, t.Name, err)
		}
		return out, nil
	}
	var out []string
	for b := t.Raw; len(b) > 0; {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: tensor %q: truncated BYTES element length", ErrMalformed, t.Name)
		}
		n := binary.LittleEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return nil, fmt.Errorf("%w: tensor %q: BYTES element of %d bytes past the data", ErrMalformed, t.Name, n)
		}
		out = append(out, string(b[4:4+n]))
		b = b[4+n:]
	}
	return out, nil
}

// EncodeStrings encodes BYTES elements for binary transport.
func EncodeStrings(s []string) []byte {
	n := 0
	for _, e := range s {
		n += 4 + len(e)
	}
	out := make([]byte, 0, n)
	for _, e := range s {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(e)))
		out = append(out, e...)
	}
	return out
}

// SplitBody splits a request or answer body in its JSON header and its
// binary part, given the Inference-Header-Content-Length value ("" for a
// body that is all JSON).
func SplitBody(body []byte, headerLength string) (header, rest []byte, err error) {
	if headerLength == "" {
		return body, nil, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(headerLength), 10, 64)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s %q is not a byte count", ErrMalformed, HeaderInferenceContentLength, headerLength)
	}
	if n < 0 || n > int64(len(body)) {
		return nil, nil, fmt.Errorf("%w: %s %d is outside the %d-byte body", ErrMalformed, HeaderInferenceContentLength, n, len(body))
	}
	return body[:n], body[n:], nil
}

// AttachBinary hands the binary part of a body to the tensors that declare
// a binary_data_size, in order. The sizes must cover rest exactly: a size
// that is negative, runs past the body or leaves bytes over is an error.
func AttachBinary(tensors []Tensor, rest []byte) error {
	off := int64(0)
	for i := range tensors {
		t := &tensors[i]
		n, ok, err := t.Parameters.Int(ParamBinaryDataSize)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if len(t.Data) > 0 {
			return fmt.Errorf("%w: tensor %q has both JSON data and %s", ErrMalformed, t.Name, ParamBinaryDataSize)
		}
		if n < 0 || n > int64(len(rest))-off {
			return fmt.Errorf("%w: tensor %q %s=%d runs past the %d binary bytes (offset %d)", ErrMalformed, t.Name, ParamBinaryDataSize, n, len(rest), off)
		}
		t.Raw = rest[off : off+n : off+n]
		off += n
	}
	if off != int64(len(rest)) {
		return fmt.Errorf("%w: %d binary bytes after the JSON header, the tensors' %s add up to %d", ErrMalformed, len(rest), ParamBinaryDataSize, off)
	}
	return nil
}

// EncodeBody encodes a request or answer whose tensors may carry binary
// data: the JSON of v, then the Raw bytes of tensors, in order. headerLen is
// the JSON length for the Inference-Header-Content-Length header, or -1
// when no tensor is binary (then body is plain JSON).
func EncodeBody(v any, tensors []Tensor) (body []byte, headerLen int, err error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, 0, err
	}
	bin, hasBin := 0, false
	for _, t := range tensors {
		bin += len(t.Raw)
		hasBin = hasBin || t.Raw != nil
	}
	if !hasBin {
		return b, -1, nil
	}
	headerLen = len(b)
	out := make([]byte, 0, len(b)+bin)
	out = append(out, b...)
	for _, t := range tensors {
		out = append(out, t.Raw...)
	}
	return out, headerLen, nil
}

// DecodeResponse decodes an infer answer body (JSON, or JSON plus binary
// data when headerLength is set) and attaches binary data to its outputs.
func DecodeResponse(body []byte, headerLength string) (*InferResponse, error) {
	h, rest, err := SplitBody(body, headerLength)
	if err != nil {
		return nil, err
	}
	var r InferResponse
	if err := json.Unmarshal(h, &r); err != nil {
		return nil, fmt.Errorf("%w: infer answer JSON: %w", ErrMalformed, err)
	}
	if err := AttachBinary(r.Outputs, rest); err != nil {
		return nil, err
	}
	return &r, nil
}
