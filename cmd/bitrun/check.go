package main

import (
	"strings"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/serve"
)

// The one resolution rule of every command that takes --resolution: a side
// from minResolution to maxResolution pixels (serve's, predict's and eval's
// limit), 0 meaning "the model's own" where a model carries one.
const (
	minResolution = 16
	maxResolution = serve.MaxResolution
)

// checkResolution applies the resolution rule to a flag's value (0 allowed,
// meaning the model's own, when zeroOK).
func checkResolution(flag string, v int, zeroOK bool) error {
	if (zeroOK && v == 0) || (v >= minResolution && v <= maxResolution) {
		return nil
	}
	if zeroOK {
		return usagef("%s %d: want %d..%d pixels, or 0 for the model's own", flag, v, minResolution, maxResolution)
	}
	return usagef("%s %d: want %d..%d pixels", flag, v, minResolution, maxResolution)
}

// checkRunFlags checks the flags train and finetune share: the dataset,
// the run folder and the batch's micro-batches.
func checkRunFlags(data, out string, batch, split int) error {
	switch {
	case data == "":
		return usagef("--data is required")
	case out == "":
		return usagef("--out is required")
	case batch%split != 0:
		return usagef("--batch %d must be a positive multiple of --batch-split %d", batch, split)
	}
	return nil
}

// gemmNames are the values of the train and finetune --gemm flags ("" is
// $BITRUN_GEMM or auto).
var gemmNames = []string{"", "auto", "go", "openblas", "gonum"}

// openDataset opens split of the dataset at path, or of the MNIST copy in
// the GoMNIST module when path is "mnist" (as train, finetune and eval take
// it).
func openDataset(path, split string) (data.Dataset, error) {
	if strings.EqualFold(path, "mnist") {
		dir, err := data.MNISTDir()
		if err != nil {
			return nil, err
		}
		path = dir
	}
	return data.Open(path, split)
}
