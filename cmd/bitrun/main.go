// Command bitrun is the CLI over bitrun: model zoo, export, inference,
// evaluation, training, fine-tuning and serving of BiT image classifiers.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/nn"
	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// usageError marks errors caused by bad flags or arguments: only those print usage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// commands are every command of bitrun, in one place (as cmd/go's main.go
// lists its commands); each is built by the file of its name.
var commands = []func() *cobra.Command{
	newBenchCmd,
	newConfigCmd,
	newEvalCmd,
	newExportCmd,
	newExtractCmd,
	withOptions(newFinetuneCmd),
	newHealthCmd,
	newInitCmd,
	newInspectCmd,
	newLoadtestCmd,
	newPredictCmd,
	newQuantizeCmd,
	withOptions(newServeCmd),
	newTrainCmd,
	newVersionCmd,
	newZooCmd,
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "bitrun",
		Short:         "Fine-tune, export and serve BiT (Big Transfer) image classifiers from Go",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			// A GEMM backend forced by BITRUN_GEMM but unavailable fails every
			// command except version, which reports it.
			if err := nn.BackendError(); err != nil && cmd.Name() != "version" {
				return err
			}
			// So does a JPEG decoder forced by BITRUN_JPEG.
			if _, err := data.JPEGDecoder(); err != nil && cmd.Name() != "version" {
				return err
			}
			return loadConfig(cmd)
		},
	}
	root.PersistentFlags().String("config", "", "config file (default: $XDG_CONFIG_HOME/bitrun/config.yaml if present)")
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn, error")
	bindKey(root, "log.level", "log-level")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	for _, f := range commands {
		root.AddCommand(f())
	}
	v, commit := buildVersion()
	root.Version = v + " (commit " + commit + ")"
	root.SetVersionTemplate("bitrun {{.Version}}\n")
	for _, c := range root.Commands() {
		unknownSubcommands(c)
	}
	return root
}

// unknownSubcommands makes every command group (a command with
// subcommands and nothing to run itself) fail on an unknown subcommand with
// a "did you mean" list, as the root does, instead of printing its help
// and exiting 0.
func unknownSubcommands(c *cobra.Command) {
	if !c.HasSubCommands() {
		return
	}
	for _, sub := range c.Commands() {
		unknownSubcommands(sub)
	}
	if c.Run != nil || c.RunE != nil {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.SuggestionsMinimumDistance = 2 // cobra's default, set only on the root
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return usagef("%s", msg)
	}
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ctx, stop := interruptContext(context.Background(), os.Stderr, os.Exit)
	defer stop()
	root := newRoot()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "bitrun:", err)
	var ue usageError
	switch {
	case errors.As(err, &ue) || isCobraArgError(err):
		if cmd != nil {
			fmt.Fprintln(os.Stderr)
			fmt.Fprint(os.Stderr, cmd.UsageString())
		}
		return exitUsage
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return exitInterrupted
	}
	return exitFailure
}

// interruptContext returns a context cancelled by the first SIGINT or
// SIGTERM, so commands stop cleanly (checkpoint, drain); a second signal
// exits the process at once with exitInterrupted, so work that does not
// watch the context (a blocked read, a long native call) cannot hold it.
// stop releases the signals.
func interruptContext(parent context.Context, stderr io.Writer, exit func(int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			fmt.Fprintf(stderr, "bitrun: second signal (%v): exiting now\n", sig)
			exit(exitInterrupted)
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(done)
			cancel()
		})
	}
}
