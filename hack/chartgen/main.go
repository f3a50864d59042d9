// Command chartgen writes the Helm chart's generated files (the CRD and RBAC
// rules templates from config/, the README's values table from values.yaml;
// see internal/chartgen). Run it from the repository's root:
//
//	go run ./hack/chartgen           # rewrite them (make chart)
//	go run ./hack/chartgen --check   # exit 1 naming each stale file
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"kvstore.dev/kvstore/internal/chartgen"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(os.Stderr, "chartgen:", line)
		}
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("chartgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", ".", "the repository's root `directory`")
	check := fs.Bool("check", false, "write nothing; fail naming each stale file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *check {
		return chartgen.Check(*root)
	}
	return chartgen.Write(*root)
}
