// Package meta is the bitrun metadata of an exported ONNX model: the keys
// package export writes into metadata_props, their typed form and the one
// reader of their values, shared by everything that reads a model (eval,
// serve, quantize, the CLI). It imports only the standard library, so a
// server reads the format without linking the exporter.
//
// Value formats: integers in decimal; mean and std as one or three numbers
// (written "r,g,b"; read as a JSON array or a list separated by commas or
// spaces, one value standing for all three channels); labels as a JSON array
// of strings (written) or one label per line (read too).
package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Keys of metadata_props.
const (
	Arch       = "bitrun.arch"          // architecture name, e.g. "R50x1"
	Classes    = "bitrun.classes"       // head outputs, decimal
	Labels     = "bitrun.labels"        // class names; absent without labels
	Resolution = "bitrun.resolution"    // eval image side in pixels, decimal
	Mean       = "bitrun.mean"          // per-channel mean on [0,1] pixels, "r,g,b"
	Std        = "bitrun.std"           // per-channel std on [0,1] pixels, "r,g,b"
	Layout     = "bitrun.layout"        // input layout, always "NCHW"
	SourceSHA  = "bitrun.source_sha256" // hex SHA-256 of the source checkpoint; absent when unknown
	Version    = "bitrun.version"       // bitrun version that wrote the file
	Variant    = "bitrun.variant"       // "inference" (WS folded) or "trainable" (WS in the graph)
)

// Order is the order the keys are written in.
var Order = []string{Arch, Classes, Labels, Resolution, Mean, Std, Layout, SourceSHA, Version, Variant}

// ErrMetadata is wrapped by every error about a malformed value.
var ErrMetadata = errors.New("meta: malformed bitrun metadata")

// Meta is the bitrun metadata of a model in typed form.
type Meta struct {
	Arch       string
	Classes    int
	Labels     []string // nil when the model has none
	Resolution int
	Mean, Std  [3]float32
	Layout     string
	SourceSHA  string
	Version    string
	Variant    string
}

// Map renders m as metadata_props entries (labels as a JSON array; no
// labels and no source digest when they are unset).
func (m Meta) Map() map[string]string {
	out := map[string]string{
		Arch:       m.Arch,
		Classes:    strconv.Itoa(m.Classes),
		Resolution: strconv.Itoa(m.Resolution),
		Mean:       formatTriple(m.Mean),
		Std:        formatTriple(m.Std),
		Layout:     m.Layout,
		Version:    m.Version,
		Variant:    m.Variant,
	}
	if m.Labels != nil {
		b, _ := json.Marshal(m.Labels) // []string always marshals
		out[Labels] = string(b)
	}
	if m.SourceSHA != "" {
		out[SourceSHA] = m.SourceSHA
	}
	return out
}

func formatTriple(v [3]float32) string {
	parts := make([]string, 3)
	for i, x := range v {
		parts[i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
	}
	return strings.Join(parts, ",")
}

// Parse reads the bitrun metadata out of a metadata map (for example
// runtime.Info.Metadata). Keys that are absent keep their zero value; keys
// that are present but malformed give an error wrapping ErrMetadata, as does
// a label count that is not the class count.
func Parse(md map[string]string) (Meta, error) {
	m := Meta{Arch: md[Arch], Layout: md[Layout], SourceSHA: md[SourceSHA], Version: md[Version], Variant: md[Variant]}
	var err error
	atoi := func(key string) (int, error) {
		s, ok := md[key]
		if !ok {
			return 0, nil
		}
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v < 0 {
			return 0, fmt.Errorf("%w: %s %q is not a non-negative integer", ErrMetadata, key, s)
		}
		return v, nil
	}
	if m.Classes, err = atoi(Classes); err != nil {
		return m, err
	}
	if m.Resolution, err = atoi(Resolution); err != nil {
		return m, err
	}
	for _, f := range []struct {
		key string
		dst *[3]float32
	}{{Mean, &m.Mean}, {Std, &m.Std}} {
		if s, ok := md[f.key]; ok {
			if *f.dst, err = ParseTriple(s); err != nil {
				return m, fmt.Errorf("%s: %w", f.key, err)
			}
		}
	}
	if s, ok := md[Labels]; ok {
		if m.Labels, err = ParseLabels(s); err != nil {
			return m, err
		}
		if m.Classes != 0 && len(m.Labels) != m.Classes {
			return m, fmt.Errorf("%w: %d labels for %d classes", ErrMetadata, len(m.Labels), m.Classes)
		}
	}
	return m, nil
}

// ParseFloats reads a JSON array of numbers or a list of decimal numbers
// separated by commas ("0.5,0.5,0.5", "0.5, 0.5, 0.5") or by spaces ("0.5
// 0.5 0.5"). An empty list, an empty field ("0.5,,0.5", "0.5,"), a value
// that is not a finite float32 (NaN, Inf, 1e39) and other spellings (hex,
// underscores) are errors.
func ParseFloats(s string) ([]float32, error) {
	t := strings.TrimSpace(s)
	bad := func(why string) error { return fmt.Errorf("%w: numbers %q: %s", ErrMetadata, s, why) }
	var fields []string
	switch {
	case strings.HasPrefix(t, "["):
		var v []float32 // JSON numbers are finite; one beyond float32 is an error
		if err := json.Unmarshal([]byte(t), &v); err != nil {
			return nil, bad(err.Error())
		}
		if len(v) == 0 {
			return nil, bad("empty list")
		}
		return v, nil
	case strings.Contains(t, ","):
		fields = strings.Split(t, ",")
	default:
		fields = strings.Fields(t)
	}
	if len(fields) == 0 {
		return nil, bad("empty list")
	}
	v := make([]float32, len(fields))
	for i, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" || strings.Trim(f, "0123456789.eE+-") != "" {
			return nil, bad(fmt.Sprintf("field %d (%q) is not a decimal number", i+1, f))
		}
		x, err := strconv.ParseFloat(f, 32) // beyond float32 is ErrRange; NaN and Inf are not decimal
		if err != nil {
			return nil, bad(fmt.Sprintf("field %d (%q) is not a finite float32", i+1, f))
		}
		v[i] = float32(x)
	}
	return v, nil
}

// Triple expands per-channel values: one value stands for all three
// channels, three are taken as they are; any other count is an error (not
// wrapping ErrMetadata: the values may be a user's, not a model's).
func Triple(v []float32) ([3]float32, error) {
	switch len(v) {
	case 1:
		return [3]float32{v[0], v[0], v[0]}, nil
	case 3:
		return [3]float32{v[0], v[1], v[2]}, nil
	}
	return [3]float32{}, fmt.Errorf("%d values; want 1 or 3", len(v))
}

// ParseTriple is ParseFloats then Triple: a mean or std value of the
// metadata (errors wrap ErrMetadata).
func ParseTriple(s string) ([3]float32, error) {
	v, err := ParseFloats(s)
	if err != nil {
		return [3]float32{}, err
	}
	t, err := Triple(v)
	if err != nil {
		return t, fmt.Errorf("%w: %q: %w", ErrMetadata, s, err)
	}
	return t, nil
}

// ParseLabels decodes a label list: a JSON array of strings (what export
// writes) or one label per line, each trimmed of surrounding white space
// ("\r\n" line ends included), trailing empty lines dropped.
func ParseLabels(s string) ([]string, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "[") {
		var out []string
		if err := json.Unmarshal([]byte(t), &out); err != nil {
			return nil, fmt.Errorf("%w: labels: %v", ErrMetadata, err)
		}
		return out, nil
	}
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines, nil
}
