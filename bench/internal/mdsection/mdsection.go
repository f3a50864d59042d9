// Package mdsection replaces a marker-delimited section of a markdown
// document, leaving everything outside the markers untouched. It is the
// one writer of docs/benchmarks.md: every benchmark names its Section.
package mdsection

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Default markers delimiting the generated benchmark section.
const (
	Begin = "<!-- kvbench:begin -->"
	End   = "<!-- kvbench:end -->"
)

// Section is one generated section of a document: its markers, and the
// heading put above them when the document has neither marker yet (none
// when Heading is empty).
type Section struct{ Heading, Begin, End string }

// The sections of docs/benchmarks.md, one per benchmark.
var (
	KVBench  = Section{Begin: Begin, End: End}
	Compose  = Section{Begin: "<!-- compose-bench:begin -->", End: "<!-- compose-bench:end -->"}
	Cluster  = Section{Heading: "## Three nodes: kvstore (Raft) vs etcd", Begin: "<!-- cluster-bench:begin -->", End: "<!-- cluster-bench:end -->"}
	Operator = Section{Heading: "## Operator: KVStore to children, and memory at 100 KVStores", Begin: "<!-- operator-bench:begin -->", End: "<!-- operator-bench:end -->"}
)

// Replace returns doc with the section's body replaced (see Replace); a
// document without the markers gets the heading and then the section
// appended, one blank line after its text.
func (s Section) Replace(doc, body string) (string, error) {
	if s.Heading != "" && !strings.Contains(doc, s.Begin) && !strings.Contains(doc, s.End) {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + s.Heading + "\n"
	}
	return Replace(doc, s.Begin, s.End, body)
}

// Replace returns doc with the text between the begin and end markers
// replaced by body. The markers themselves are kept, each on its own
// line. If doc contains neither marker, the section is appended to doc.
// A document with only one marker, markers in the wrong order, or more
// than one begin marker is rejected rather than guessed at.
func Replace(doc, begin, end, body string) (string, error) {
	if begin == "" || end == "" {
		return "", errors.New("mdsection: empty marker")
	}
	section := begin + "\n" + strings.TrimRight(body, "\n") + "\n" + end
	nb, ne := strings.Count(doc, begin), strings.Count(doc, end)
	switch {
	case nb == 0 && ne == 0:
		if doc == "" {
			return section + "\n", nil
		}
		// Leave exactly one blank line between the document and the section.
		sep := "\n\n"
		switch {
		case strings.HasSuffix(doc, "\n\n"):
			sep = ""
		case strings.HasSuffix(doc, "\n"):
			sep = "\n"
		}
		return doc + sep + section + "\n", nil
	case nb != 1 || ne != 1:
		return "", fmt.Errorf("mdsection: want exactly one %q and one %q, found %d and %d", begin, end, nb, ne)
	}
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if j < i {
		return "", fmt.Errorf("mdsection: %q appears before %q", end, begin)
	}
	return doc[:i] + section + doc[j+len(end):], nil
}

// WriteFile replaces the section of the markdown file at path (see
// Section.Replace), creating the file if it does not exist. The file is
// replaced atomically via a temporary file in the same directory.
func (s Section) WriteFile(path, body string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	doc, err := s.Replace(string(old), body)
	if err != nil {
		return fmt.Errorf("update %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".kvbench-*.md")
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.WriteString(doc); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename to %s: %w", path, err)
	}
	return nil
}
