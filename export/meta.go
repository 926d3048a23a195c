package export

import "github.com/bitrun/bitrun/export/meta"

// The metadata format is package meta's (export/meta); these names are
// export's own spelling of it.
const (
	MetaArch       = meta.Arch
	MetaClasses    = meta.Classes
	MetaLabels     = meta.Labels
	MetaResolution = meta.Resolution
	MetaMean       = meta.Mean
	MetaStd        = meta.Std
	MetaLayout     = meta.Layout
	MetaSourceSHA  = meta.SourceSHA
	MetaVersion    = meta.Version
	MetaVariant    = meta.Variant
)

// Meta is the bitrun metadata of an exported model in typed form.
type Meta = meta.Meta

// ErrMetadata is wrapped when bitrun metadata cannot be parsed.
var ErrMetadata = meta.ErrMetadata

// ParseMeta is meta.Parse.
func ParseMeta(md map[string]string) (Meta, error) { return meta.Parse(md) }

// ParseLabels is meta.ParseLabels.
func ParseLabels(s string) ([]string, error) { return meta.ParseLabels(s) }

// Producer is the producer_name of every model this package writes.
const Producer = "bitrun"

// Output and input names of the exported graph.
const (
	InputImage          = "image"         // float32 [N,3,H,W]
	OutputLogits        = "logits"        // float32 [N,classes]
	OutputFeatures      = "features"      // float32 [N,C], pre-logits
	OutputProbabilities = "probabilities" // float32 [N,classes], softmax of logits
)
