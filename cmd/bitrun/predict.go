package main

import (
	"context"
	"fmt"
	"image"
	"io"
	"math"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/eval"
	"github.com/bitrun/bitrun/internal/finite"
	"github.com/bitrun/bitrun/internal/regfile"
	"github.com/bitrun/bitrun/serve"
)

// prediction is one image's top-k, as printed by predict --json.
type prediction struct {
	Image string       `json:"image"`
	Top   []classScore `json:"top"`
}

type classScore struct {
	Index int     `json:"index"`
	Label string  `json:"label,omitempty"`
	Score float64 `json:"score"` // softmax probability of the logits
}

func newPredictCmd() *cobra.Command {
	var o predictOptions
	cmd := &cobra.Command{
		Use:   "predict (--onnx FILE | --weights FILE | --model NAME) IMAGE...",
		Short: "Classify images and print the top-k classes with their probabilities",
		Long: `Classify JPEG, PNG, GIF, BMP or WebP images. Labels and preprocessing come
from the ONNX model's metadata (or --resolution/--mean/--std/--channels).
Results go to stdout: one block per image, or a JSON array with --json.`,
		Args: cobra.MinimumNArgs(1),
		RunE: runE(bound(&o, predictFlags), runPredict),
	}
	addModelFlags(cmd, &o.classifier.model)
	f := cmd.Flags()
	f.Int("top-k", 5, "classes to show per image") // predict.top_k, read by predictFlags
	f.BoolVar(&o.json, "json", false, "print JSON")
	f.Int("batch", 8, "images per inference batch") // predict.batch, read by predictFlags
	f.StringVar(&o.labelsFile, "labels", "", "labels file (one per line or a JSON array); default: the model's bitrun.labels metadata")
	addPreprocessFlags(cmd, &o.classifier.preFlags)
	bindKey(cmd, "predict.top_k", "top-k")
	bindKey(cmd, "predict.batch", "batch")
	return cmd
}

// predictOptions is what predict classifies: bound to its flags,
// completed by predictFlags and checked by validate.
type predictOptions struct {
	classifier classifierOptions
	images     []string
	topK       int
	batch      int
	json       bool
	labelsFile string
	labels     []string // read from labelsFile by validate
}

// predictFlags completes predict's options with its configuration keys,
// the model flags and the image arguments.
func predictFlags(cmd *cobra.Command, images []string, o *predictOptions) error {
	o.images = images
	if err := configInts(cmd, intKey{"predict.top_k", 1, math.MaxInt, &o.topK}, intKey{"predict.batch", 1, 4096, &o.batch}); err != nil {
		return err
	}
	return o.classifier.complete(cmd)
}

// validate reads --labels and checks the model flags.
func (o *predictOptions) validate() error {
	var err error
	if o.labels, err = readLabels("predict", o.labelsFile, eval.ParseLabels); err != nil {
		return err
	}
	return o.classifier.model.check()
}

// runPredict classifies the images and prints their top-k on stdout.
func runPredict(ctx context.Context, o predictOptions, stdout, _ io.Writer) error {
	images, k, batch, fileLabels, labelsFile := o.images, o.topK, o.batch, o.labels, o.labelsFile
	clf, _, closeFn, err := o.classifier.open(ctx, "predict", fileLabels)
	if err != nil {
		return err
	}
	defer closeFn()
	labels := clf.Labels()
	if fileLabels != nil {
		labels = fileLabels
	}
	pre := clf.Preprocess()
	per := pre.Channels * pre.Size * pre.Size
	var results []prediction
	for start := 0; start < len(images); start += batch {
		names := images[start:min(start+batch, len(images))]
		x := make([]float32, len(names)*per)
		for i, name := range names {
			img, err := decodeFile(name)
			if err != nil {
				return err
			}
			data.EvalTensor(img, pre.Size, pre.Channels, pre.Norm, x[i*per:(i+1)*per])
		}
		logits, classes, err := clf.Logits(ctx, x, len(names))
		if err != nil {
			return err
		}
		if fileLabels != nil && len(fileLabels) != classes {
			// As export: a labels file names every class of the model.
			return fmt.Errorf("predict: --labels %s has %d labels, the model %d classes", labelsFile, len(fileLabels), classes)
		}
		for i, name := range names {
			row := logits[i*classes : (i+1)*classes]
			if c := finite.Index(row); c >= 0 {
				return fmt.Errorf("predict: %s: %w: the model answered %v for class %d (are its weights finite?)", name, eval.ErrNonFinite, row[c], c)
			}
			probs := serve.Softmax(row) // the scores serve returns for the same image
			p := prediction{Image: name}
			for _, c := range eval.TopK(row, k) {
				cs := classScore{Index: c, Score: probs[c]}
				if c < len(labels) {
					cs.Label = labels[c]
				}
				p.Top = append(p.Top, cs)
			}
			results = append(results, p)
		}
	}
	out := stdout
	if o.json {
		return writeJSON(out, results)
	}
	var b strings.Builder
	for _, r := range results {
		fmt.Fprintf(&b, "%s\n", r.Image)
		for rank, c := range r.Top {
			label := c.Label
			if label == "" {
				label = fmt.Sprintf("class %d", c.Index)
			}
			fmt.Fprintf(&b, "  %d. %7.3f%%  %s (%d)\n", rank+1, 100*c.Score, label, c.Index)
		}
	}
	_, err = fmt.Fprint(out, b.String())
	return err
}

// decodeFile decodes one image file (pixel count capped before decoding).
func decodeFile(name string) (image.Image, error) {
	f, err := regfile.Open(name)
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	defer f.Close()
	img, err := data.Decode(f, data.DefaultMaxPixels)
	if err != nil {
		return nil, fmt.Errorf("predict: %s: %w", name, err)
	}
	return img, nil
}
