package alerts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"kvstore.dev/kvstore/test/harness"
)

// TestBackupRules checks the shipped rule file and runs its unit tests.
func TestBackupRules(t *testing.T) {
	out := harness.Promtool(t, harness.Root(), "check", "rules", harness.BackupRules())
	if !strings.Contains(out, "SUCCESS: 1 rules found") {
		t.Errorf("promtool check rules:\n%s", out)
	}

	// The unit tests must test the shipped file, not a copy.
	const tests = "testdata/backup-rules.test.yaml"
	data, err := os.ReadFile(tests)
	if err != nil {
		t.Fatal(err)
	}
	var file harness.RuleTests
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.RuleFiles) != 1 {
		t.Fatalf("%s: rule_files %v, want the shipped file", tests, file.RuleFiles)
	}
	got, err := filepath.Abs(filepath.Join(filepath.Dir(tests), file.RuleFiles[0]))
	if err != nil {
		t.Fatal(err)
	}
	want, err := filepath.Abs(harness.BackupRules())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("%s tests %s, want %s", tests, got, want)
	}
	out = harness.Promtool(t, ".", "test", "rules", tests)
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
}
