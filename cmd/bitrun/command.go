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

// writeJSON prints v on w as indented JSON: the --json output of every
// command.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
