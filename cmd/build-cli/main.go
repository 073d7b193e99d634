// Command build-cli runs a command (make) through build-service on the host
// and relays its output and exit code; see package cli. It is wiring only,
// and ships into containers: it must never link OPA or zerolog.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/build-service/build-service/cli"
)

func main() {
	// Registered before anything else, so a Ctrl-C while connecting is
	// forwarded or honoured rather than killing build-cli mid-protocol.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, cli.ForwardedSignals...)
	os.Exit(cli.Main(context.Background(), os.Args[1:], cli.IO{
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		LookupEnv: os.LookupEnv,
		// The physical directory, as make's $(CURDIR) would be: os.Getwd
		// trusts $PWD, whose container-side symlinks mean nothing on the host.
		Getwd:   syscall.Getwd,
		Signals: sigs,
	}))
}
