package main

import (
	"context"
	"encoding/json"
	"io"

	"github.com/spf13/cobra"
)

// runE is the RunE of every command, in three steps (cli/cli's shape):
// read fills the command's options from its flags, arguments and
// configuration (the one step that touches cobra), validate checks them
// (usage errors), and run does the work with no cobra inside, so tests call
// it in-process.
func runE[O any, P interface {
	*O
	validate() error
}](read func(*cobra.Command, []string) (O, error), run func(ctx context.Context, o O, stdout, stderr io.Writer) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		o, err := read(cmd, args)
		if err != nil {
			return err
		}
		if err := P(&o).validate(); err != nil {
			return err
		}
		return run(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
}

// boundFlags is the read step of a command whose options are bound to its
// flags (StringVar and the like) and take no arguments or configuration:
// the options as the flags left them.
func boundFlags[O any](o *O) func(*cobra.Command, []string) (O, error) {
	return bound(o, nil)
}

// boundArgs is boundFlags for a command whose arguments are bound too,
// to *args, a field of *o (the files of eval merge, extract merge and
// finetune table).
func boundArgs[O any](o *O, args *[]string) func(*cobra.Command, []string) (O, error) {
	return func(_ *cobra.Command, a []string) (O, error) {
		*args = a
		return *o, nil
	}
}

// bound is the read step of a command whose options are bound to its flags
// and completed by complete from its arguments and configuration keys
// (flag > env > config file > default, through configInt and the like): a
// copy of the options as the flags left them, then completed. A nil
// complete leaves them as they are.
func bound[O any](o *O, complete func(cmd *cobra.Command, args []string, o *O) error) func(*cobra.Command, []string) (O, error) {
	return func(cmd *cobra.Command, args []string) (O, error) {
		v := *o
		if complete == nil {
			return v, nil
		}
		err := complete(cmd, args, &v)
		return v, err
	}
}

// withOptions is the constructor main lists for a command built with its
// flags bound to options it is given (so that tests can read them): the
// command bound to fresh options.
func withOptions[O any](build func(*O) *cobra.Command) func() *cobra.Command {
	return func() *cobra.Command { return build(new(O)) }
}

// writeJSON prints v on w as indented JSON: the --json output of every
// command.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
