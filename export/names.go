package export

// Producer is the producer_name of every model this package writes; the
// metadata_props it writes are package meta's (export/meta).
const Producer = "bitrun"

// Output and input names of the exported graph.
const (
	InputImage          = "image"         // float32 [N,3,H,W]
	OutputLogits        = "logits"        // float32 [N,classes]
	OutputFeatures      = "features"      // float32 [N,C], pre-logits
	OutputProbabilities = "probabilities" // float32 [N,classes], softmax of logits
)
