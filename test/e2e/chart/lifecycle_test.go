package chart

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallUpgradeUninstall drives a release through its life against an
// API server that starts without the KVStore CRD, as a new cluster does.
// Nothing runs the operator (envtest has no kubelet), so this is about what
// Helm does with the chart's objects: the CRD template installed, upgraded
// (also to an edited CRD) and kept, the KVStore created, changed and deleted.
func TestInstallUpgradeUninstall(t *testing.T) {
	t.Parallel()
	h := newHelm(t)
	c := startCluster(t, false)
	h.kubeconfig = c.kubeconfig
	ns := []string{"--namespace", "kvstore"}
	jsonpath := func(args ...string) string {
		t.Helper()
		return c.must(nil, append(append([]string{"get"}, args...), "--namespace", "kvstore")...)
	}

	// A KVStore cannot be created in the install that creates its CRD; the
	// chart says so and what to do instead.
	_, err := h.run(append([]string{"install", "kvstore", chartDir, "--create-namespace", "--set", "instance.enabled=true"}, ns...)...)
	if err == nil || !strings.Contains(err.Error(), "--reuse-values --set instance.enabled=true") {
		t.Fatalf("first install with an instance: want the chart's advice to install in two steps, got %v", err)
	}

	h.must(append([]string{"install", "kvstore", chartDir, "--create-namespace"}, ns...)...)
	if got := jsonpath("crd", "kvstores.kvstore.dev", "-o", `jsonpath={.metadata.annotations.helm\.sh/resource-policy}`); got != "keep" {
		t.Errorf("CRD resource-policy annotation %q, want keep", got)
	}
	jsonpath("deployment", "kvstore-operator")
	jsonpath("clusterrolebinding", "kvstore-operator-kvstore")

	// Upgrade to a chart whose CRD has a new printer column, creating the
	// KVStore on the way.
	edited := copyChart(t)
	crdFile := filepath.Join(edited, "templates", "crd.yaml")
	crd, err := os.ReadFile(crdFile)
	if err != nil {
		t.Fatal(err)
	}
	const columns = "  - additionalPrinterColumns:\n"
	if !strings.Contains(string(crd), columns) {
		t.Fatalf("%s has no %q", crdFile, columns)
	}
	crd = []byte(strings.Replace(string(crd), columns, columns+"    - jsonPath: .status.endpoint\n      name: Endpoint\n      type: string\n", 1))
	if err := os.WriteFile(crdFile, crd, 0o644); err != nil {
		t.Fatal(err)
	}
	h.must(append([]string{"upgrade", "kvstore", edited, "--reuse-values", "--set", "instance.enabled=true", "--set", "instance.spec.replicas=3"}, ns...)...)
	if got := jsonpath("crd", "kvstores.kvstore.dev", "-o", "jsonpath={.spec.versions[0].additionalPrinterColumns[0].name}"); got != "Endpoint" {
		t.Errorf("after the upgrade the CRD's first printer column is %q, want the new Endpoint", got)
	}
	if got := jsonpath("kvstore", "kvstore", "-o", "jsonpath={.spec.replicas}"); got != "3" {
		t.Errorf("KVStore replicas %q, want 3", got)
	}

	// Back to the chart as it is, with a spec change.
	h.must(append([]string{"upgrade", "kvstore", chartDir, "--reuse-values", "--set", "instance.spec.replicas=5"}, ns...)...)
	if got := jsonpath("crd", "kvstores.kvstore.dev", "-o", "jsonpath={.spec.versions[0].additionalPrinterColumns[0].name}"); got != "Replicas" {
		t.Errorf("after the second upgrade the CRD's first printer column is %q, want Replicas", got)
	}
	if got := jsonpath("kvstore", "kvstore", "-o", "jsonpath={.spec.replicas}"); got != "5" {
		t.Errorf("KVStore replicas %q, want 5", got)
	}

	// Uninstall keeps the CRD, deletes the rest.
	out := h.must(append([]string{"uninstall", "kvstore"}, ns...)...)
	if !strings.Contains(out, "kept due to the resource policy") {
		t.Errorf("helm uninstall did not report the kept CRD:\n%s", out)
	}
	jsonpath("crd", "kvstores.kvstore.dev")
	for _, gone := range [][]string{{"kvstore", "kvstore"}, {"deployment", "kvstore-operator"}, {"clusterrolebinding", "kvstore-operator-kvstore"}} {
		if out, err := ignoreWarnings(c.run(nil, append([]string{"get", "--namespace", "kvstore", "--ignore-not-found"}, gone...)...)); err != nil || out != "" {
			t.Errorf("%s is still there after helm uninstall (%v): %s", strings.Join(gone, "/"), err, out)
		}
	}

	// Installed again under the same name, the release adopts the kept CRD,
	// which is now known: the KVStore comes in one step.
	h.must(append([]string{"install", "kvstore", chartDir, "--set", "instance.enabled=true"}, ns...)...)
	jsonpath("kvstore", "kvstore")
}

// copyChart copies charts/kvstore into a temporary directory.
func copyChart(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "kvstore")
	err := filepath.WalkDir(chartDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(chartDir, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
