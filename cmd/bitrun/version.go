package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/nn"
	"github.com/spf13/cobra"
)

// versionLines are extra "name: value" lines other files add to `bitrun version`
// (for example the ONNX Runtime version).
var versionLines []func() (string, string)

func buildVersion() (version, commit string) {
	version, commit = "(devel)", "unknown"
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if info.Main.Version != "" {
		version = info.Main.Version
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			commit = s.Value
		}
	}
	return
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the bitrun version, commit, GEMM backend, JPEG decoder and ONNX Runtime version",
		Args:  cobra.NoArgs,
		RunE:  runE(boundFlags(new(versionOptions)), runVersion),
	}
}

// versionOptions: version takes no settings.
type versionOptions struct{}

func (versionOptions) validate() error { return nil }

// runVersion prints the version lines on stdout.
func runVersion(_ context.Context, _ versionOptions, out, _ io.Writer) error {
	v, c := buildVersion()
	fmt.Fprintf(out, "bitrun: %s\ncommit: %s\ngemm: %s\n", v, c, nn.Backend().Name())
	if err := nn.BackendError(); err != nil {
		fmt.Fprintf(out, "gemm error: %v\n", err)
	}
	jpegDec, err := data.JPEGDecoder()
	fmt.Fprintf(out, "jpeg: %s\n", jpegDec)
	if err != nil {
		fmt.Fprintf(out, "jpeg error: %v\n", err)
	}
	for _, f := range versionLines {
		k, val := f()
		fmt.Fprintf(out, "%s: %s\n", k, val)
	}
	return nil
}
