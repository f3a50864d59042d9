package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// PromtoolEnv names the promtool binary (make test sets it from
// hack/install-promtool.sh).
const PromtoolEnv = "KVSTORE_PROMTOOL_BIN"

// BackupRules is the path of the shipped alert rule file,
// config/prometheus/backup-rules.yaml (the PrometheusRules of kustomize
// and the chart are generated from it).
func BackupRules() string {
	return filepath.Join(Root(), "config", "prometheus", "backup-rules.yaml")
}

// PromtoolBin returns Prometheus's promtool: $KVSTORE_PROMTOOL_BIN, else
// bin/promtool. A missing one fails the test, never skips it: `make
// test-deps` builds it (hack/install-promtool.sh).
func PromtoolBin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(PromtoolEnv)
	if bin == "" {
		bin = filepath.Join(Root(), "bin", "promtool")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no promtool at %s (the alert rule tests run it): `make test-deps` builds it (hack/install-promtool.sh), or set %s: %v", bin, PromtoolEnv, err)
	}
	return bin
}

// Promtool runs promtool with args in dir and returns its combined
// output; a non-zero exit fails the test with that output.
func Promtool(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(PromtoolBin(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// RuleTests is a promtool unit test file (`promtool test rules`).
type RuleTests struct {
	RuleFiles          []string   `json:"rule_files"`
	EvaluationInterval string     `json:"evaluation_interval,omitempty"`
	Tests              []RuleTest `json:"tests"`
}

// RuleTest is one test group: input series, sampled every Interval from
// time 0 (the Unix epoch), and the alerts expected at given times.
type RuleTest struct {
	Name        string      `json:"name,omitempty"`
	Interval    string      `json:"interval"`
	InputSeries []Series    `json:"input_series"`
	Alerts      []AlertTest `json:"alert_rule_test"`
}

// Series is an input series: a selector with labels and promtool's
// expanding notation of values ("600x30 9000x10").
type Series struct {
	Series string `json:"series"`
	Values string `json:"values"`
}

// AlertTest expects exactly Alerts (none when empty) of AlertName at
// EvalTime ("2h10m").
type AlertTest struct {
	EvalTime  string          `json:"eval_time"`
	AlertName string          `json:"alertname"`
	Alerts    []ExpectedAlert `json:"exp_alerts"`
}

// ExpectedAlert is an alert's labels (without alertname) and, when set,
// its annotations.
type ExpectedAlert struct {
	Labels      map[string]string `json:"exp_labels"`
	Annotations map[string]string `json:"exp_annotations,omitempty"`
}

// PromtoolTestRules writes tests to a file in a temporary directory and
// runs `promtool test rules` on it; a failed expectation fails t with
// promtool's report. Empty expectations are written as [] (no alert).
func PromtoolTestRules(t testing.TB, tests RuleTests) {
	t.Helper()
	for i := range tests.Tests {
		for j := range tests.Tests[i].Alerts {
			if tests.Tests[i].Alerts[j].Alerts == nil {
				tests.Tests[i].Alerts[j].Alerts = []ExpectedAlert{}
			}
		}
	}
	data, err := yaml.Marshal(tests)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.test.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("promtool test rules:\n%s", data)
	Promtool(t, dir, "test", "rules", "rules.test.yaml")
}
