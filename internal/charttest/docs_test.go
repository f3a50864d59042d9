package charttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kvstore.dev/kvstore/internal/chartdocs"
)

// TestReadmeValuesTable fails when charts/kvstore/README.md's values table
// is not the one values.yaml's comments make, or a value is undescribed.
func TestReadmeValuesTable(t *testing.T) {
	t.Parallel()
	values, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	table, err := chartdocs.Table(values)
	if err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	updated, err := chartdocs.Update(readme, table)
	if err != nil {
		t.Fatal(err)
	}
	if string(updated) != string(readme) {
		t.Fatalf("charts/kvstore/README.md's values table is stale: run `go run ./hack/chartdocs`")
	}
	// Every top-level value is in the table.
	for _, line := range strings.Split(string(values), "\n") {
		if key, _, ok := strings.Cut(line, ":"); ok && key != "" && !strings.HasPrefix(key, "#") && !strings.HasPrefix(key, " ") {
			if !strings.Contains(table, "| `"+key) {
				t.Errorf("the values table has no row for %s", key)
			}
		}
	}
}
