// Command build-service is the root daemon that runs approved builds on the
// host as the calling user. This file only wires: flags and subcommands are
// in run.go, everything else lives in the packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/build-service/build-service/executor"
)

func main() {
	// When this process is the executor's exec helper, HelperMain never returns.
	executor.HelperMain()
	err := run(context.Background(), os.Args[1:])
	var ue usageError
	switch {
	case err == nil:
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "build-service: %v\n%s", err, usage)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "build-service: %v\n", err)
		os.Exit(exitCode(err))
	}
}
