package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/backup"
)

// TestPruneScheduled writes four real backups into a directory
// destination, then applies a retention of the newest two: the two oldest
// backups go from the directory, and so do the scheduled KVStoreBackups
// that recorded them; an on-demand KVStoreBackup and one of another
// KVStore are kept.
func TestPruneScheduled(t *testing.T) {
	dir := backup.NewDir(t.TempDir())
	start := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	var names []string
	for i := range 4 {
		now := start.Add(time.Duration(i) * time.Hour)
		m, err := backup.Write(context.Background(), dir, strings.NewReader("snapshot "+now.String()), backup.Info{Revision: uint64(i + 1), Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, m.Name)
	}
	kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "kv", Namespace: "ns"}}
	kv.Spec.Backup = &kvv1.BackupSpec{Retention: kvv1.BackupRetention{KeepLast: ptr(int32(2))}}
	obj := func(name, kvName, backupName string, scheduled bool) *kvv1.KVStoreBackup {
		b := &kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{kvv1.LabelKVStore: kvName}}}
		if scheduled {
			b.Labels[kvv1.LabelScheduled] = "true"
		}
		b.Spec.KVStoreName = kvName
		b.Status = kvv1.KVStoreBackupStatus{Phase: kvv1.BackupSucceeded, BackupName: backupName}
		return b
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		obj("s0", "kv", names[0], true), obj("s1", "kv", names[1], true), obj("s3", "kv", names[3], true),
		obj("manual", "kv", names[1], false), obj("other", "other", names[0], true),
	).Build()
	r := &BackupReconciler{Client: c, Now: func() time.Time { return start.Add(5 * time.Hour) }}
	pruned, err := r.prune(context.Background(), kv, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(pruned, ","), names[0]+","+names[1]; got != want && got != names[1]+","+names[0] {
		t.Errorf("pruned %s, want %s", got, want)
	}
	left, err := backup.List(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 || left[0].Name == names[0] || left[1].Name == names[0] {
		t.Errorf("left in the destination: %+v", left)
	}
	list := &kvv1.KVStoreBackupList{}
	if err := c.List(context.Background(), list, client.InNamespace("ns")); err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, b := range list.Items {
		kept = append(kept, b.Name)
	}
	if got := strings.Join(kept, ","); got != "manual,other,s3" {
		t.Errorf("KVStoreBackups left: %s, want manual,other,s3", got)
	}

	// No retention: nothing is deleted.
	kv.Spec.Backup.Retention = kvv1.BackupRetention{}
	if pruned, err := r.prune(context.Background(), kv, dir); err != nil || len(pruned) != 0 {
		t.Errorf("without retention: pruned %v, %v", pruned, err)
	}
}
