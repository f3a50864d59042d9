package chart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kvstore.dev/kvstore/internal/chartdocs"
)

// TestDocsDescribeEveryValue fails when a value of values.yaml is not
// described or a top-level value has no row in the values table
// (TestChartDrift fails when the README's table is stale).
func TestDocsDescribeEveryValue(t *testing.T) {
	t.Parallel()
	values, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	table, err := chartdocs.Table(values)
	if err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	for _, line := range strings.Split(string(values), "\n") {
		if key, _, ok := strings.Cut(line, ":"); ok && key != "" && !strings.HasPrefix(key, "#") && !strings.HasPrefix(key, " ") {
			if !strings.Contains(table, "| `"+key) {
				t.Errorf("the values table has no row for %s", key)
			}
		}
	}
}
