package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ListDir is every path under dir, relative to it ("" for dir itself), in
// the lexical order of filepath.Walk: what a test compares to show that a
// refused operation left a directory as it was.
func ListDir(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		out = append(out, strings.TrimPrefix(p, dir))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
