package controller

import (
	"context"
	"fmt"
	"reflect"
	"time"

	k8serrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// Kinds of other projects' CRDs the operator uses when they are installed.
var (
	serviceMonitorGVK = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}
	certificateGVK    = schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"}
)

// installed reports whether the cluster serves gvk (its CRD is installed).
// A "not installed" answer is remembered for notInstalledTTL: each miss
// costs a discovery request, made under the RESTMapper's lock.
func (rc *run) installed(gvk schema.GroupVersionKind) (bool, error) {
	now := rc.r.now()
	if until, ok := rc.r.missing.Load(gvk); ok && now.Before(until.(time.Time)) {
		return false, nil
	}
	_, err := rc.r.Client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	switch {
	case err == nil:
		rc.r.missing.Delete(gvk)
		return true, nil
	case meta.IsNoMatchError(err):
		rc.r.missing.Store(gvk, now.Add(notInstalledTTL))
		return false, nil
	}
	return false, fmt.Errorf("look up %s: %w", gvk.Kind, err)
}

// notInstalledTTL is how long an optional CRD found missing is not looked
// up again.
const notInstalledTTL = time.Minute

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

// serviceMonitor applies the ServiceMonitor when the Prometheus Operator's
// CRD is installed.
func (rc *run) serviceMonitor(ctx context.Context) error {
	ok, err := rc.installed(serviceMonitorGVK)
	if err != nil || !ok {
		return err
	}
	return rc.applyUnstructured(ctx, desiredServiceMonitor(rc.kv))
}

// certManagerCertificate applies the cert-manager Certificate, or reports
// that cert-manager is missing.
func (rc *run) certManagerCertificate(ctx context.Context) error {
	ok, err := rc.installed(certificateGVK)
	if err != nil {
		return err
	}
	if !ok {
		return &problem{"CertManagerNotInstalled", "spec.tls.issuerRef is set but the cert-manager.io/v1 Certificate kind is not served by this cluster; install cert-manager or clear spec.tls.issuerRef"}
	}
	return rc.applyUnstructured(ctx, desiredCertificate(rc.kv, rc.r.Options))
}

// applyUnstructured is apply for kinds without typed apply configurations:
// the live object is left alone when it already contains every desired
// field with the desired value.
func (rc *run) applyUnstructured(ctx context.Context, desired *unstructured.Unstructured) error {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(desired.GroupVersionKind())
	err := rc.r.Client.Get(ctx, types.NamespacedName{Namespace: desired.GetNamespace(), Name: desired.GetName()}, live)
	exists := err == nil
	switch {
	case k8serrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("get %s %s: %w", desired.GetKind(), desired.GetName(), err)
	case !metav1IsControlledBy(live, rc.kv):
		return &problem{"ChildConflict", fmt.Sprintf("%s %s exists and is not controlled by this KVStore; delete or rename it", desired.GetKind(), desired.GetName())}
	case contains(live.Object["spec"], desired.Object["spec"]) &&
		contains(live.Object["metadata"].(map[string]any)["labels"], desired.Object["metadata"].(map[string]any)["labels"]):
		return nil
	}
	if err := rc.r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(desired), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply %s %s: %w", desired.GetKind(), desired.GetName(), err)
	}
	verb := "Created"
	if exists {
		verb = "Updated"
	}
	rc.r.Recorder.Eventf(rc.kv, nil, "Normal", verb, "Apply", "%s %s %s", verb, desired.GetKind(), desired.GetName())
	return nil
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
