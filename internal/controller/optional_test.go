package controller

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// TestCertificateSecretIsCached: the Secret cert-manager writes for
// spec.tls.issuerRef carries the operator's managed-by label, without which
// the operator's cache (CacheOptions: only labelled Secrets) never sees it.
func TestCertificateSecretIsCached(t *testing.T) {
	kv := &kvv1.KVStore{}
	kv.Name, kv.Namespace = "kv", "ns"
	kv.Spec.TLS.IssuerRef = &kvv1.IssuerReference{Name: "issuer", Kind: "ClusterIssuer"}
	u := desiredCertificate(kv, BuildOptions{})
	got, _, err := unstructured.NestedString(u.Object, "spec", "secretTemplate", "labels", ManagedByLabel)
	if err != nil || got != FieldOwner {
		t.Fatalf("spec.secretTemplate.labels[%s] = %q (%v), want %q", ManagedByLabel, got, err, FieldOwner)
	}
	if name, _, _ := unstructured.NestedString(u.Object, "spec", "secretName"); name != namesFor(kv).tls {
		t.Errorf("spec.secretName %q, want %q", name, namesFor(kv).tls)
	}
}
