package controller

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// TestWriteStatusKeepsNewerConditions: the KVStore reconciler computes a
// status from a cached copy that predates the backup controller's
// LastBackupSucceeded condition. Writing it must not drop that condition:
// the stale write is refused (false, to look again), and a write from a
// fresh copy keeps the condition and adds the reconciler's own.
func TestWriteStatusKeepsNewerConditions(t *testing.T) {
	ctx := context.Background()
	stored := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "kv", Namespace: "ns"}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(&kvv1.KVStore{}).WithObjects(stored).Build()
	key := client.ObjectKeyFromObject(stored)

	stale := &kvv1.KVStore{}
	if err := c.Get(ctx, key, stale); err != nil {
		t.Fatal(err)
	}
	// The backup controller writes its condition after the cache's read.
	backupWrite := stale.DeepCopy()
	meta.SetStatusCondition(&backupWrite.Status.Conditions, metav1.Condition{
		Type: kvv1.ConditionLastBackupSucceeded, Status: metav1.ConditionTrue, Reason: ReasonBackupSucceeded, Message: "ok"})
	if err := c.Status().Update(ctx, backupWrite); err != nil {
		t.Fatal(err)
	}

	own := func(kv *kvv1.KVStore) kvv1.KVStoreStatus {
		st := *kv.Status.DeepCopy()
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: kvv1.ConditionAvailable, Status: metav1.ConditionTrue, Reason: "Available", Message: "available"})
		return st
	}
	tests := []struct {
		name        string
		from        func() *kvv1.KVStore
		wantWritten bool
		wantReady   bool
	}{
		{"stale copy is refused", func() *kvv1.KVStore { return stale.DeepCopy() }, false, false},
		{"fresh copy is written", func() *kvv1.KVStore {
			fresh := &kvv1.KVStore{}
			if err := c.Get(ctx, key, fresh); err != nil {
				t.Fatal(err)
			}
			return fresh
		}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := tt.from()
			written, err := writeStatus(ctx, c, kv, own(kv))
			if err != nil {
				t.Fatal(err)
			}
			if written != tt.wantWritten {
				t.Errorf("written = %v, want %v", written, tt.wantWritten)
			}
			got := &kvv1.KVStore{}
			if err := c.Get(ctx, key, got); err != nil {
				t.Fatal(err)
			}
			if meta.FindStatusCondition(got.Status.Conditions, kvv1.ConditionLastBackupSucceeded) == nil {
				t.Errorf("LastBackupSucceeded was dropped: %+v", got.Status.Conditions)
			}
			if ready := meta.FindStatusCondition(got.Status.Conditions, kvv1.ConditionAvailable) != nil; ready != tt.wantReady {
				t.Errorf("Available condition present = %v, want %v", ready, tt.wantReady)
			}
		})
	}
}
