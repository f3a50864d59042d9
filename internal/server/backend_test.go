package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBootstrapAllowed: only a file that says "true" lets the bootstrap
// node start a new cluster; whatever else it says, or its absence, is a
// refusal that names the file.
func TestBootstrapAllowed(t *testing.T) {
	tests := map[string]struct {
		content *string
		allowed bool
	}{
		"true":             {content: ptr("true"), allowed: true},
		"true and newline": {content: ptr(" true\n"), allowed: true},
		"false":            {content: ptr("false")},
		"empty":            {content: ptr("")},
		"other word":       {content: ptr("yes")},
		"capitalised":      {content: ptr("True")},
		"no file":          {},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "bootstrap-allowed")
			if tc.content != nil {
				if err := os.WriteFile(file, []byte(*tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := bootstrapAllowed(file)
			if tc.allowed {
				if err != nil {
					t.Fatalf("bootstrapAllowed = %v, want allowed", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "cluster.bootstrap_allowed_file") {
				t.Fatalf("bootstrapAllowed = %v, want a refusal naming cluster.bootstrap_allowed_file", err)
			}
		})
	}
}

func ptr(s string) *string { return &s }
