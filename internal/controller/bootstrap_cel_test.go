package controller

import (
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// TestBootstrapIsImmutable: spec.bootstrap cannot be added after
// creation, changed or removed, nor be empty; the API server's messages
// name the field.
func TestBootstrapIsImmutable(t *testing.T) {
	ns := newNamespace(t)
	create(t, &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: ns}})
	src := &kvv1.BackupDestination{PersistentVolumeClaim: &kvv1.PVCDestination{ClaimName: "backups"}}
	from := &kvv1.BootstrapSpec{FromBackup: &kvv1.BootstrapFromBackup{Source: src, Name: "kvstore-1", SHA256: strings.Repeat("a", 64)}}
	create(t, &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "restored", Namespace: ns}, Spec: kvv1.KVStoreSpec{Bootstrap: from.DeepCopy()}})
	cases := map[string]struct {
		name string
		edit func(*kvv1.KVStore)
		want string
	}{
		"added":   {"plain", func(kv *kvv1.KVStore) { kv.Spec.Bootstrap = from.DeepCopy() }, "spec.bootstrap can be set only when the KVStore is created"},
		"changed": {"restored", func(kv *kvv1.KVStore) { kv.Spec.Bootstrap.FromBackup.SHA256 = strings.Repeat("b", 64) }, "spec.bootstrap is immutable"},
		"removed": {"restored", func(kv *kvv1.KVStore) { kv.Spec.Bootstrap = nil }, "spec.bootstrap can be set only when the KVStore is created"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var err error
			for range 10 { // the operator's status writes may conflict with the update
				kv := &kvv1.KVStore{}
				if err := get(ns, tc.name, kv); err != nil {
					t.Fatal(err)
				}
				tc.edit(kv)
				if err = k8s.Update(ctx, kv); !apierrors.IsConflict(err) {
					break
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("update = %v, want a refusal saying %q", err, tc.want)
			}
		})
	}
	empty := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "empty", Namespace: ns}, Spec: kvv1.KVStoreSpec{Bootstrap: &kvv1.BootstrapSpec{}}}
	if err := k8s.Create(ctx, empty); err == nil || !strings.Contains(err.Error(), "spec.bootstrap needs fromBackup") {
		t.Errorf("create with an empty spec.bootstrap = %v", err)
	}
}
