package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/bitrun/bitrun/model"
	"github.com/spf13/cobra"
)

func newInitCmd() *cobra.Command {
	var o initOptions
	cmd := &cobra.Command{
		Use:   "init --arch NAME --out FILE",
		Short: "Write freshly initialised BiT weights as an .npz checkpoint",
		Long: `Write freshly initialised weights for a BiT architecture: He-normal conv
kernels, GroupNorm gamma 1 and beta 0, and a zero head, deterministic for a
seed. The file uses the official checkpoint key names and layout, so every
command that reads BiT checkpoints accepts it.

Architectures: ` + archList() + `, or any RDxW with D in 50, 101, 152.
Weights take 4 bytes per parameter (R152x4: 3.7 GB) in memory and on disk.`,
		Example: `  bitrun init --arch R50x1 --classes 10 --out r50x1.npz
  bitrun init --arch tiny --classes 10 --seed 7 --out tiny.npz`,
		Args: cobra.NoArgs,
		RunE: runE(boundFlags(&o), runInit),
	}
	f := cmd.Flags()
	f.StringVar(&o.arch, "arch", "", "architecture (R50x1, R152x4, tiny, ...)")
	f.IntVar(&o.classes, "classes", 1000, "number of head classes")
	f.StringVar(&o.out, "out", "", "output checkpoint file (.npz)")
	f.Int64Var(&o.seed, "seed", 1, "random seed")
	f.BoolVar(&o.force, "force", false, "overwrite an existing output file")
	return cmd
}

func archList() string { return strings.Join(model.ArchNames(), ", ") }

// initOptions is what init writes, bound to its flags and checked by
// validate.
type initOptions struct {
	arch    string
	classes int
	out     string
	seed    int64
	force   bool
	cfg     model.Config // the architecture, set by validate
}

// validate checks the flags (usage errors), resolves the architecture and
// refuses an existing --out without --force.
func (o *initOptions) validate() error {
	switch {
	case o.arch == "":
		return usagef("--arch is required (one of %s)", archList())
	case o.out == "":
		return usagef("--out is required")
	case o.classes < 1:
		return usagef("--classes must be positive, got %d", o.classes)
	}
	var err error
	if o.cfg, err = model.Arch(o.arch, o.classes); err != nil {
		return usagef("--arch: %v", err)
	}
	return checkOverwrite(o.out, o.force)
}

// runInit writes the initialised checkpoint; the summary goes to stderr.
func runInit(ctx context.Context, o initOptions, _, stderr io.Writer) error {
	cfg, out, seed := o.cfg, o.out, o.seed
	params := model.Init(cfg, seed)
	if params == nil {
		return fmt.Errorf("architecture %s is not valid", cfg.Name)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := model.SaveNPZContext(ctx, out, params); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s: %s, %d classes, %s parameters, seed %d\n",
		out, cfg.Name, cfg.Classes, groupDigits(cfg.ParamCount()), seed)
	return nil
}

// checkOverwrite refuses an output path that exists unless force is set.
func checkOverwrite(path string, force bool) error {
	if force {
		return nil
	}
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return fmt.Errorf("%s already exists (use --force to overwrite)", path)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	}
	return err
}

// groupDigits writes n with thousands separators: 25549352 -> "25,549,352".
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
