// Command kvctl is kvstore's command line client (internal/kvctl; run
// `kvctl help`, or see docs/api.md).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"kvstore.dev/kvstore/internal/kvctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := kvctl.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
