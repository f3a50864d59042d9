// Command chartdocs writes the values table of charts/kvstore/README.md from
// the "# --" comments of charts/kvstore/values.yaml (see internal/chartdocs).
//
//	go run ./hack/chartdocs          # rewrite the table
//	go run ./hack/chartdocs -check   # exit 1 when the table is stale
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"kvstore.dev/kvstore/internal/chartdocs"
)

func main() {
	chart := flag.String("chart", "charts/kvstore", "chart `directory`")
	check := flag.Bool("check", false, "only report whether the README is up to date")
	flag.Parse()
	if err := run(*chart, *check); err != nil {
		fmt.Fprintln(os.Stderr, "chartdocs:", err)
		os.Exit(1)
	}
}

func run(chart string, check bool) error {
	values, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		return err
	}
	table, err := chartdocs.Table(values)
	if err != nil {
		return err
	}
	path := filepath.Join(chart, "README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	updated, err := chartdocs.Update(readme, table)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case bytes.Equal(updated, readme):
		return nil
	case check:
		return fmt.Errorf("%s: the values table is stale; run go run ./hack/chartdocs", path)
	}
	return os.WriteFile(path, updated, 0o644)
}
