package export

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Metadata keys written to the model's metadata_props (ONNX Runtime's
// custom metadata map). Readers that must not import this package use the
// plain strings; see the package documentation for the value formats.
const (
	MetaArch       = "bitrun.arch"          // architecture name, e.g. "R50x1"
	MetaClasses    = "bitrun.classes"       // head outputs, decimal
	MetaLabels     = "bitrun.labels"        // JSON array of class names; absent without labels
	MetaResolution = "bitrun.resolution"    // eval image side in pixels, decimal
	MetaMean       = "bitrun.mean"          // per-channel mean on [0,1] pixels, "r,g,b"
	MetaStd        = "bitrun.std"           // per-channel std on [0,1] pixels, "r,g,b"
	MetaLayout     = "bitrun.layout"        // input layout, always "NCHW"
	MetaSourceSHA  = "bitrun.source_sha256" // hex SHA-256 of the source checkpoint; absent when unknown
	MetaVersion    = "bitrun.version"       // bitrun version that wrote the file
	MetaVariant    = "bitrun.variant"       // "inference" (WS folded) or "trainable" (WS in the graph)
)

// Producer is the producer_name of every model this package writes.
const Producer = "bitrun"

// Output and input names of the exported graph.
const (
	InputImage          = "image"         // float32 [N,3,H,W]
	OutputLogits        = "logits"        // float32 [N,classes]
	OutputFeatures      = "features"      // float32 [N,C], pre-logits
	OutputProbabilities = "probabilities" // float32 [N,classes], softmax of logits
)

// Meta is the bitrun metadata of an exported model in typed form.
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

// Map renders m as metadata_props entries (labels as a JSON array).
func (m Meta) Map() map[string]string {
	out := map[string]string{
		MetaArch:       m.Arch,
		MetaClasses:    strconv.Itoa(m.Classes),
		MetaResolution: strconv.Itoa(m.Resolution),
		MetaMean:       formatTriple(m.Mean),
		MetaStd:        formatTriple(m.Std),
		MetaLayout:     m.Layout,
		MetaVersion:    m.Version,
		MetaVariant:    m.Variant,
	}
	if m.Labels != nil {
		b, _ := json.Marshal(m.Labels) // []string always marshals
		out[MetaLabels] = string(b)
	}
	if m.SourceSHA != "" {
		out[MetaSourceSHA] = m.SourceSHA
	}
	return out
}

// metaOrder is the order the keys are written in.
var metaOrder = []string{MetaArch, MetaClasses, MetaLabels, MetaResolution, MetaMean, MetaStd,
	MetaLayout, MetaSourceSHA, MetaVersion, MetaVariant}

func formatTriple(v [3]float32) string {
	parts := make([]string, 3)
	for i, x := range v {
		parts[i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
	}
	return strings.Join(parts, ",")
}

func parseTriple(key, s string) ([3]float32, error) {
	var out [3]float32
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "["), "]"))
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return out, fmt.Errorf("%w: %s %q: want three comma-separated numbers", ErrMetadata, key, s)
	}
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil {
			return out, fmt.Errorf("%w: %s %q: %v", ErrMetadata, key, s, err)
		}
		out[i] = float32(v)
	}
	return out, nil
}

// ParseMeta reads the bitrun metadata out of a metadata map (for example
// runtime.Info.Metadata). Keys that are absent keep their zero value; keys
// that are present but malformed give an error wrapping ErrMetadata.
func ParseMeta(md map[string]string) (Meta, error) {
	var m Meta
	var err error
	m.Arch = md[MetaArch]
	m.Layout = md[MetaLayout]
	m.SourceSHA = md[MetaSourceSHA]
	m.Version = md[MetaVersion]
	m.Variant = md[MetaVariant]
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
	if m.Classes, err = atoi(MetaClasses); err != nil {
		return m, err
	}
	if m.Resolution, err = atoi(MetaResolution); err != nil {
		return m, err
	}
	if s, ok := md[MetaMean]; ok {
		if m.Mean, err = parseTriple(MetaMean, s); err != nil {
			return m, err
		}
	}
	if s, ok := md[MetaStd]; ok {
		if m.Std, err = parseTriple(MetaStd, s); err != nil {
			return m, err
		}
	}
	if s, ok := md[MetaLabels]; ok {
		if m.Labels, err = ParseLabels(s); err != nil {
			return m, err
		}
		if m.Classes != 0 && len(m.Labels) != m.Classes {
			return m, fmt.Errorf("%w: %d labels for %d classes", ErrMetadata, len(m.Labels), m.Classes)
		}
	}
	return m, nil
}

// ParseLabels decodes a label list: a JSON array of strings (what this
// package writes) or one label per line (a trailing newline and "\r\n"
// line ends are accepted).
func ParseLabels(s string) ([]string, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "[") {
		var out []string
		if err := json.Unmarshal([]byte(t), &out); err != nil {
			return nil, fmt.Errorf("%w: labels: %v", ErrMetadata, err)
		}
		return out, nil
	}
	return SplitLabelLines(s), nil
}

// SplitLabelLines splits a labels file: one label per line, "\r\n" or "\n"
// line ends, trailing empty lines dropped.
func SplitLabelLines(s string) []string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
