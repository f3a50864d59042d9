package chart

import (
	"reflect"
	"testing"
)

// TestPrometheusRuleTemplate renders the chart's PrometheusRule: nothing by
// default; with prometheusRule.enabled its spec is the rule file
// config/prometheus/backup-rules.yaml (the annotations' {{ }} unescaped
// again), as config/prometheus's PrometheusRule is, with the extra labels.
// TestChartDrift tells where a generated file is stale; this test shows
// that what Helm renders is the rule promtool tests (test/e2e/alerts).
func TestPrometheusRuleTemplate(t *testing.T) {
	t.Parallel()
	h := newHelm(t)
	if out, err := h.template("kvstore", "kvstore"); err != nil {
		t.Fatal(err)
	} else if n := len(find(splitManifests(t, out), "PrometheusRule")); n != 0 {
		t.Errorf("the defaults render %d PrometheusRule, want none", n)
	}
	out, err := h.template("kvstore", "kvstore", "--set", "prometheusRule.enabled=true", "--set", "prometheusRule.labels.release=prom")
	if err != nil {
		t.Fatal(err)
	}
	rules := find(splitManifests(t, out), "PrometheusRule")
	if len(rules) != 1 {
		t.Fatalf("prometheusRule.enabled renders %d PrometheusRules, want 1", len(rules))
	}
	got := rules[0]
	if got["apiVersion"] != "monitoring.coreos.com/v1" || str(got, "metadata", "namespace") != "kvstore" || str(got, "metadata", "labels", "release") != "prom" {
		t.Errorf("apiVersion %v, metadata %v", got["apiVersion"], got["metadata"])
	}
	want := readYAML(t, "config/prometheus/backup-rules.yaml")
	if !reflect.DeepEqual(got["spec"], map[string]any(want)) {
		t.Errorf("the rendered spec differs from config/prometheus/backup-rules.yaml:\n got %v\nwant %v", got["spec"], want)
	}
	if k := readYAML(t, "config/prometheus/prometheusrule.yaml"); !reflect.DeepEqual(k["spec"], map[string]any(want)) {
		t.Errorf("config/prometheus/prometheusrule.yaml's spec differs from backup-rules.yaml: run make manifests")
	}

	// The rule tells KVStores apart by the metrics' namespace label, which
	// Prometheus keeps only with honorLabels.
	out, err = h.template("kvstore", "kvstore", "--set", "serviceMonitor.enabled=true", "--show-only", "templates/servicemonitor.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sm := splitManifests(t, out)
	if len(sm) != 1 {
		t.Fatalf("%d ServiceMonitors", len(sm))
	}
	for _, e := range asList(get(sm[0], "spec", "endpoints")) {
		if get(e, "honorLabels") != true {
			t.Errorf("a ServiceMonitor endpoint without honorLabels: true: %v", e)
		}
	}
}
