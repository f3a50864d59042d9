package mdsection

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplace(t *testing.T) {
	const b, e = "<!-- b -->", "<!-- e -->"
	tests := []struct {
		name    string
		doc     string
		body    string
		want    string
		wantErr bool
	}{
		{
			name: "empty document",
			doc:  "", body: "new",
			want: "<!-- b -->\nnew\n<!-- e -->\n",
		},
		{
			name: "append after text without newline",
			doc:  "# T", body: "new",
			want: "# T\n\n<!-- b -->\nnew\n<!-- e -->\n",
		},
		{
			name: "append after text with newline",
			doc:  "# T\n", body: "new",
			want: "# T\n\n<!-- b -->\nnew\n<!-- e -->\n",
		},
		{
			name: "append after blank line",
			doc:  "# T\n\n", body: "new",
			want: "# T\n\n<!-- b -->\nnew\n<!-- e -->\n",
		},
		{
			name: "replace keeps surrounding text",
			doc:  "# T\nintro\n<!-- b -->\nold\nolder\n<!-- e -->\n## After\nkept\n", body: "new\n",
			want: "# T\nintro\n<!-- b -->\nnew\n<!-- e -->\n## After\nkept\n",
		},
		{
			name: "replace empty section",
			doc:  "a\n<!-- b --><!-- e -->\nz", body: "x",
			want: "a\n<!-- b -->\nx\n<!-- e -->\nz",
		},
		{
			name: "trailing newlines of body are normalised",
			doc:  "<!-- b -->\n<!-- e -->", body: "x\n\n\n",
			want: "<!-- b -->\nx\n<!-- e -->",
		},
		{
			name: "idempotent",
			doc:  "a\n<!-- b -->\nx\n<!-- e -->\nz\n", body: "x",
			want: "a\n<!-- b -->\nx\n<!-- e -->\nz\n",
		},
		{name: "only begin", doc: "a\n<!-- b -->\nx\n", body: "x", wantErr: true},
		{name: "only end", doc: "a\n<!-- e -->\nx\n", body: "x", wantErr: true},
		{name: "reversed", doc: "<!-- e -->\nx\n<!-- b -->\n", body: "x", wantErr: true},
		{name: "two sections", doc: "<!-- b -->\n<!-- e -->\n<!-- b -->\n<!-- e -->\n", body: "x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Replace(tt.doc, b, e, tt.body)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Replace() error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Replace() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestReplaceEmptyMarker(t *testing.T) {
	if _, err := Replace("doc", "", End, "x"); err == nil {
		t.Fatal("Replace with empty begin marker: want error")
	}
}

func TestUpdateFile(t *testing.T) {
	tests := []struct {
		name    string
		initial *string // nil: file does not exist
		want    string
	}{
		{name: "missing file is created", want: Begin + "\nbody\n" + End + "\n"},
		{
			name:    "other sections survive",
			initial: ptr("# Bench\n\n" + Begin + "\nold\n" + End + "\n\n## Notes\nhand-written\n"),
			want:    "# Bench\n\n" + Begin + "\nbody\n" + End + "\n\n## Notes\nhand-written\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "docs", "benchmarks.md")
			if tt.initial != nil {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(*tt.initial), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := KVBench.WriteFile(path, "body"); err != nil {
				t.Fatalf("UpdateFile() = %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("file =\n%q\nwant\n%q", got, tt.want)
			}
			entries, err := os.ReadDir(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("directory has %d entries, want only the document (temp file left behind?)", len(entries))
			}
		})
	}
}

func TestUpdateFileRejectsBrokenMarkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.md")
	orig := "keep\n" + Begin + "\nno end\n"
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := KVBench.WriteFile(path, "body"); err == nil {
		t.Fatal("UpdateFile() = nil, want error for missing end marker")
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != orig {
		t.Errorf("file changed despite error: %q", got)
	}
}

func TestSectionHeading(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.md")
	orig := "# Benchmarks\n\n<!-- kvbench:begin -->\nx\n<!-- kvbench:end -->\n"
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Cluster.WriteFile(path, "first\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := orig + "\n" + Cluster.Heading + "\n\n" + Cluster.Begin + "\nfirst\n" + Cluster.End + "\n"
	if string(got) != want {
		t.Fatalf("after append:\n%s\nwant:\n%s", got, want)
	}
	// A second update replaces only the section, and adds no heading.
	if err := os.WriteFile(path, append(got, []byte("\n## Later section\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Cluster.WriteFile(path, "second"); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(path)
	want = strings.Replace(want, "first", "second", 1) + "\n## Later section\n"
	if string(got) != want {
		t.Fatalf("after replace:\n%s\nwant:\n%s", got, want)
	}
}

func ptr(s string) *string { return &s }

// TestBenchmarksDocRoundTrip rewrites each section of docs/benchmarks.md
// with its own body: every benchmark's writer must leave the document
// byte-identical.
func TestBenchmarksDocRoundTrip(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, s := range []Section{KVBench, Compose, Cluster, Operator} {
		_, rest, ok := strings.Cut(doc, s.Begin+"\n")
		body, _, ok2 := strings.Cut(rest, s.End)
		if !ok || !ok2 {
			t.Fatalf("docs/benchmarks.md has no section %s", s.Begin)
		}
		if got, err := s.Replace(doc, body); err != nil || got != doc {
			t.Errorf("rewriting section %s with its own body changed the document (err %v)", s.Begin, err)
		}
	}
}
