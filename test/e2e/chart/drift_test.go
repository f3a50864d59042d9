package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"kvstore.dev/kvstore/internal/chartgen"
)

const regenerate = "the chart's RBAC differs from config/rbac: run `make manifests` (it regenerates _manager_rules.tpl); the other roles are written in templates/rbac.yaml"

// TestChartDrift fails when a file that hack/chartgen makes (the CRD and
// RBAC rules templates from config/, the README's values table from
// values.yaml) is not what it makes from the committed sources.
func TestChartDrift(t *testing.T) {
	t.Parallel()
	if err := chartgen.Check(root); err != nil {
		t.Fatal(err)
	}
}

// TestCRDTemplate renders the chart's CRD: config/crd/bases' CRD with the
// keep annotation and the chart's labels, and nothing with
// crds.install=false.
func TestCRDTemplate(t *testing.T) {
	t.Parallel()
	h := newHelm(t)
	out, err := h.template("kvstore", "kvstore", "--show-only", "templates/crd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs := splitManifests(t, out)
	if len(objs) != 1 || objs[0].kind() != "CustomResourceDefinition" {
		t.Fatalf("templates/crd.yaml rendered %d objects, want the CRD", len(objs))
	}
	chart := objs[0]
	if str(chart, "metadata", "annotations", "helm.sh/resource-policy") != "keep" {
		t.Errorf("the CRD lacks the annotation helm.sh/resource-policy: keep (helm uninstall would delete every KVStore)")
	}
	for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
		if get(chart, "metadata", "labels", l) == nil {
			t.Errorf("the CRD lacks the label %s", l)
		}
	}
	want := readYAML(t, "config/crd/bases/kvstore.dev_kvstores.yaml")
	if chart.name() != want.name() || !reflect.DeepEqual(chart["spec"], want["spec"]) {
		t.Errorf("the rendered CRD's name or spec differs from config/crd/bases' (TestChartDrift tells where the template is stale)")
	}

	if out, err := h.template("kvstore", "kvstore", "--set", "crds.install=false"); err != nil {
		t.Fatal(err)
	} else if n := len(find(splitManifests(t, out), "CustomResourceDefinition")); n != 0 {
		t.Errorf("crds.install=false still renders %d CRD", n)
	}
}

// TestRBACMatchesConfig compares the rules of the chart's roles with those of
// config/rbac: the operator's ClusterRole must equal controller-gen's
// role.yaml; the leader election Role and the editor and viewer ClusterRoles
// must have config/'s rules plus at most the extras listed here.
func TestRBACMatchesConfig(t *testing.T) {
	t.Parallel()
	h := newHelm(t)
	out, err := h.template("kvstore", "kvstore", "--show-only", "templates/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]object{}
	for _, o := range splitManifests(t, out) {
		byName[o.kind()+"/"+o.name()] = o
	}
	// The "became leader" Event of client-go's leader election is a core
	// Event; config/rbac/leader_election_role.yaml grants events.k8s.io only
	// (TestOperatorWorksWithChartRBAC shows the refusal without this rule).
	coreEvents := "apiGroups= resources=events resourceNames= nonResourceURLs= verbs=create,patch"
	for _, tc := range []struct {
		chartRole, file string
		extra           []string
	}{
		{"ClusterRole/kvstore-operator-kvstore", "config/rbac/role.yaml", nil},
		{"Role/kvstore-operator-leader-election", "config/rbac/leader_election_role.yaml", []string{coreEvents}},
		{"ClusterRole/kvstore-operator-kvstore-editor", "config/rbac/kvstore_editor_role.yaml", nil},
		{"ClusterRole/kvstore-operator-kvstore-viewer", "config/rbac/kvstore_viewer_role.yaml", nil},
	} {
		o, ok := byName[tc.chartRole]
		if !ok {
			t.Errorf("the chart renders no %s", tc.chartRole)
			continue
		}
		got, want := normalRules(o["rules"]), normalRules(readYAML(t, tc.file)["rules"])
		allowed := map[string]bool{}
		for _, r := range append(want, tc.extra...) {
			allowed[r] = true
		}
		have := map[string]bool{}
		for _, r := range got {
			have[r] = true
			if !allowed[r] {
				t.Errorf("%s has a rule that %s has not: %s; %s", tc.chartRole, tc.file, r, regenerate)
			}
		}
		for _, r := range want {
			if !have[r] {
				t.Errorf("%s lacks a rule of %s: %s; %s", tc.chartRole, tc.file, r, regenerate)
			}
		}
	}
}

// normalRules sorts each rule's lists and then the rules, so that order
// does not matter.
func normalRules(v any) []string {
	list, _ := v.([]any)
	var rules []string
	for _, r := range list {
		m, _ := r.(map[string]any)
		var parts []string
		for _, field := range []string{"apiGroups", "resources", "resourceNames", "nonResourceURLs", "verbs"} {
			var items []string
			for _, it := range asList(m[field]) {
				items = append(items, it.(string))
			}
			sort.Strings(items)
			parts = append(parts, field+"="+strings.Join(items, ","))
		}
		rules = append(rules, strings.Join(parts, " "))
	}
	sort.Strings(rules)
	return rules
}

func asList(v any) []any { l, _ := v.([]any); return l }

// TestSchemaFollowsCRD checks values.schema.json's instance.spec against the
// CRD's spec: the same properties at every level the schema closes with
// additionalProperties: false, and the same bounds and enums where both
// have them. A new field in the CRD fails this test until the schema knows it.
func TestSchemaFollowsCRD(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	crd := readYAML(t, "config/crd/bases/kvstore.dev_kvstores.yaml")
	versions := asList(get(crd, "spec", "versions"))
	if len(versions) != 1 {
		t.Fatalf("the CRD has %d versions; this test knows one", len(versions))
	}
	crdSpec := get(versions[0], "schema", "openAPIV3Schema", "properties", "spec")
	compareSchemas(t, "instance.spec", resolve(schema, get(schema, "definitions", "instanceSpec")), crdSpec, schema)
}

func compareSchemas(t *testing.T, path string, chart, crd any, root map[string]any) {
	t.Helper()
	for _, kw := range []string{"minimum", "maximum", "minLength", "maxLength", "enum"} {
		c, k := get(chart, kw), get(crd, kw)
		if c != nil && k != nil && !reflect.DeepEqual(c, k) {
			t.Errorf("%s: %s is %v in values.schema.json, %v in the CRD", path, kw, c, k)
		}
	}
	if get(chart, "additionalProperties") != false {
		return
	}
	chartProps, _ := get(chart, "properties").(map[string]any)
	crdProps, _ := get(crd, "properties").(map[string]any)
	if got, want := keys(chartProps), keys(crdProps); !reflect.DeepEqual(got, want) {
		t.Errorf("%s: values.schema.json has properties %v, the CRD %v", path, got, want)
	}
	for name, c := range chartProps {
		if k, ok := crdProps[name]; ok {
			compareSchemas(t, path+"."+name, resolve(root, c), k, root)
		}
	}
}

// resolve follows a local "$ref": "#/definitions/<name>".
func resolve(root map[string]any, s any) any {
	if ref, ok := get(s, "$ref").(string); ok {
		return get(root, strings.Split(strings.TrimPrefix(ref, "#/"), "/")...)
	}
	return s
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
