package controller

import (
	"context"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// TestRestoringFrom: a KVStoreBackup's events reach exactly the KVStores of
// its namespace that still wait to be restored from it.
func TestRestoringFrom(t *testing.T) {
	from := func(name, ns, backup string, phase kvv1.BootstrapPhase) *kvv1.KVStore {
		kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		if backup != "" {
			kv.Spec.Bootstrap = &kvv1.BootstrapSpec{FromBackup: &kvv1.BootstrapFromBackup{BackupName: backup}}
		}
		if phase != "" {
			kv.Status.Bootstrap = &kvv1.BootstrapStatus{Phase: phase}
		}
		return kv
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		from("waiting", "ns", "nightly", ""),
		from("restoring", "ns", "nightly", kvv1.BootstrapRestoring),
		from("restored", "ns", "nightly", kvv1.BootstrapRestored),
		from("failed", "ns", "nightly", kvv1.BootstrapFailed),
		from("other-backup", "ns", "weekly", ""),
		from("no-bootstrap", "ns", "", ""),
		from("other-namespace", "elsewhere", "nightly", ""),
	).Build()
	r := &Reconciler{Client: c}
	var got []string
	for _, req := range r.restoringFrom(context.Background(), &kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "ns"}}) {
		got = append(got, req.Namespace+"/"+req.Name)
	}
	slices.Sort(got)
	if want := []string{"ns/restoring", "ns/waiting"}; !slices.Equal(got, want) {
		t.Errorf("restoringFrom(ns/nightly) = %v, want %v", got, want)
	}
}
