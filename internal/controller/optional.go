package controller

import (
	"reflect"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// Kinds of other projects' CRDs the operator uses when they are installed.
var (
	serviceMonitorGVK = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}
	certificateGVK    = schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"}
)

// desiredServiceMonitor makes Prometheus (the Prometheus Operator) scrape
// every server's /metrics through the client Service's metrics port.
func desiredServiceMonitor(kv *kvv1.KVStore) *unstructured.Unstructured {
	u := unstructuredChild(kv, serviceMonitorGVK, kv.Name, "metrics")
	u.Object["spec"] = map[string]any{
		"selector":          map[string]any{"matchLabels": toAny(labels(kv, "server"))},
		"namespaceSelector": map[string]any{"matchNames": []any{kv.Namespace}},
		"endpoints":         []any{map[string]any{"port": "metrics", "path": "/metrics", "interval": "30s"}},
	}
	return u
}

// desiredCertificate asks cert-manager for the edge certificate, written to
// <name>-tls, from spec.tls.issuerRef.
func desiredCertificate(kv *kvv1.KVStore, o BuildOptions) *unstructured.Unstructured {
	ref := kv.Spec.TLS.IssuerRef
	kind, group := ref.Kind, ref.Group
	if kind == "" {
		kind = "Issuer"
	}
	if group == "" {
		group = "cert-manager.io"
	}
	hosts := tlsHosts(kv, o)
	dns := make([]any, len(hosts))
	for i, h := range hosts {
		dns[i] = h
	}
	u := unstructuredChild(kv, certificateGVK, kv.Name, "tls")
	u.Object["spec"] = map[string]any{
		"secretName":  namesFor(kv).tls,
		"dnsNames":    dns,
		"duration":    "8760h",
		"renewBefore": "2920h", // re-issued at two thirds of its lifetime, as the operator's own
		"privateKey":  map[string]any{"algorithm": "ECDSA", "size": int64(256), "rotationPolicy": "Always"},
		"usages":      []any{"server auth", "digital signature"},
		"issuerRef":   map[string]any{"name": ref.Name, "kind": kind, "group": group},
		// cert-manager writes the Secret; the label puts it in the
		// operator's cache, which holds only Secrets labelled as its own.
		"secretTemplate": map[string]any{"labels": map[string]any{ManagedByLabel: FieldOwner}},
	}
	return u
}

func unstructuredChild(kv *kvv1.KVStore, gvk schema.GroupVersionKind, name, component string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	u.SetName(name)
	u.SetNamespace(kv.Namespace)
	u.Object["metadata"].(map[string]any)["labels"] = toAny(labels(kv, component))
	u.Object["metadata"].(map[string]any)["ownerReferences"] = []any{map[string]any{
		"apiVersion": kvv1.GroupVersion.String(), "kind": "KVStore", "name": kv.Name, "uid": string(kv.UID),
		"controller": true, "blockOwnerDeletion": true,
	}}
	return u
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// contains reports whether have holds every map key of want with an equal
// value, recursively; lists and scalars must be equal.
func contains(have, want any) bool {
	wm, ok := want.(map[string]any)
	if !ok {
		return reflect.DeepEqual(normalize(have), normalize(want))
	}
	hm, ok := have.(map[string]any)
	if !ok {
		return false
	}
	for k, w := range wm {
		if !contains(hm[k], w) {
			return false
		}
	}
	return true
}

// normalize makes numbers comparable: JSON decoding gives int64 or float64.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalize(x[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}
