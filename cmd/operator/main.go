// Command kvstore-operator runs the KVStore controller: see docs/operator.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"kvstore.dev/kvstore/internal/operator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "kvstore-operator:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg, err := operator.Load(args, stderr)
	if err != nil {
		return err
	}
	return operator.Run(ctx, cfg, operator.Logger(cfg, stderr))
}
