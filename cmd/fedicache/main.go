// Command fedicache is a caching media front for Mastodon: set as S3_ALIAS_HOST, it serves every
// media URL from the bucket (signed, so the bucket stays private) and falls back to the old
// volume for objects not yet copied.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the process's exit status: 0 on success, 2 for an
// invalid configuration or command line, 1 for any other failure.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "fedicache:", err)
	var ce *config.Error
	var ue *usageError
	if errors.As(err, &ce) || errors.As(err, &ue) {
		return 2
	}
	return 1
}

// usageError is a command line that cobra could not parse.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() + " (see fedicache --help)" }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "fedicache",
		Short:         "A caching media front for Mastodon's object storage",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(newServeCmd(), newBackfillCmd(), newDemoCmd(), newVersionCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "fedicache", buildVersion())
		},
	}
}
