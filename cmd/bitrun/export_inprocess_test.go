package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/export"
)

// TestExportInProcess: export runs from its options struct alone, without
// cobra (issue 17: validate, then run(ctx, opts, stdout, stderr)), and
// validate refuses bad values as usage errors before any download.
func TestExportInProcess(t *testing.T) {
	m := tinyModel(t)
	dir := t.TempDir()
	labels := writeTestFile(t, dir, "labels.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n")
	base := func() exportOptions {
		return exportOptions{weights: weightsRef{file: m.npz}, out: filepath.Join(dir, "m.onnx"), resolution: 32,
			opset: export.DefaultOpset, externalData: "auto"}
	}
	o := base()
	o.labelsFile = labels
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if len(o.labels) != 10 {
		t.Fatalf("labels %q", o.labels)
	}
	var out, errOut bytes.Buffer
	if err := runExport(context.Background(), o, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(errOut.String(), "exported "+o.out) || out.Len() != 0 {
		t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
	}
	if _, err := os.Stat(o.out); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		edit func(*exportOptions)
		want string
	}{
		{"no weights", func(o *exportOptions) { o.weights = weightsRef{} }, "give the weights"},
		{"no out", func(o *exportOptions) { o.out = "" }, "--out is required"},
		{"resolution", func(o *exportOptions) { o.resolution = 0 }, "--resolution 0"},
		{"external data", func(o *exportOptions) { o.externalData = "sometimes" }, "--external-data"},
		{"opset", func(o *exportOptions) { o.opset = 9 }, "--opset 9"},
	} {
		o := base()
		tc.edit(&o)
		wantUsage(t, tc.name, o.validate(), tc.want)
	}
	// An existing --out without --force is a state error, not a usage error.
	o = base()
	if err := o.validate(); err == nil || errors.As(err, new(usageError)) {
		t.Errorf("existing --out: %v, want a plain error", err)
	}
}
