package controller

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

func TestPlanSchedule(t *testing.T) {
	created := time.Date(2026, 12, 3, 8, 10, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return time.Date(2026, 12, 3, h, m, 0, 0, time.UTC) }
	cases := map[string]struct {
		spec   *kvv1.BackupSpec
		newest time.Time
		now    time.Time
		create bool
		at     time.Time
		after  time.Duration
		err    bool
	}{
		"no backup spec":           {now: at(9, 0)},
		"no schedule":              {spec: &kvv1.BackupSpec{}, now: at(9, 0)},
		"suspended":                {spec: &kvv1.BackupSpec{Schedule: "@hourly", Suspend: true}, now: at(12, 0)},
		"not due yet":              {spec: &kvv1.BackupSpec{Schedule: "@hourly"}, now: at(8, 30), after: 30 * time.Minute},
		"first one due":            {spec: &kvv1.BackupSpec{Schedule: "@hourly"}, now: at(9, 0), create: true, at: at(9, 0), after: time.Hour},
		"taken already":            {spec: &kvv1.BackupSpec{Schedule: "@hourly"}, newest: at(9, 0), now: at(9, 20), after: 40 * time.Minute},
		"missed ones: one, latest": {spec: &kvv1.BackupSpec{Schedule: "0 * * * *"}, newest: at(9, 0), now: at(12, 15), create: true, at: at(12, 0), after: 45 * time.Minute},
		"cron five fields":         {spec: &kvv1.BackupSpec{Schedule: "*/15 * * * *"}, now: at(8, 14), after: time.Minute},
		"bad schedule":             {spec: &kvv1.BackupSpec{Schedule: "every tuesday"}, now: at(9, 0), err: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			step, err := planSchedule(tc.spec, created, tc.newest, tc.now)
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want error %v", err, tc.err)
			}
			if step.create != tc.create || !step.at.Equal(tc.at) && tc.create || step.after != tc.after {
				t.Errorf("step %+v, want create %v at %v after %v", step, tc.create, tc.at, tc.after)
			}
		})
	}
}

func TestScheduledName(t *testing.T) {
	kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}
	when := time.Date(2026, 12, 3, 9, 5, 7, 0, time.UTC)
	n := scheduledName(kv, when)
	if n != "demo-20261203090507" {
		t.Fatalf("name %s", n)
	}
	if got, ok := scheduledAt(kv, n); !ok || !got.Equal(when) {
		t.Errorf("scheduledAt %v %v", got, ok)
	}
	for _, other := range []string{"demo-manual", "other-20261203090507", "demo-2026"} {
		if _, ok := scheduledAt(kv, other); ok {
			t.Errorf("%s parsed as scheduled", other)
		}
	}
}

// TestScheduledBackups: a KVStore with a schedule gets KVStoreBackups
// named for the scheduled time, labelled and owned by it.
func TestScheduledBackups(t *testing.T) {
	ns := newNamespace(t)
	kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "sched", Namespace: ns}}
	kv.Spec.TLS.Pods = "Disabled"
	kv.Spec.Backup = &kvv1.BackupSpec{Schedule: "@every 1s", Destination: kvv1.BackupDestination{S3: &kvv1.S3Destination{
		Bucket: "nowhere", Endpoint: "http://127.0.0.1:1", CredentialsSecret: "none"}}}
	create(t, kv)
	t.Cleanup(func() { patch(t, kv, func(k *kvv1.KVStore) { k.Spec.Backup.Suspend = true }) })
	eventually(t, "two scheduled backups", func() error {
		list := &kvv1.KVStoreBackupList{}
		if err := k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		n := 0
		for _, b := range list.Items {
			if _, ok := scheduledAt(kv, b.Name); !ok {
				return fmt.Errorf("backup %s is not named for its time", b.Name)
			}
			if b.Labels[kvv1.LabelKVStore] != kv.Name || b.Labels[kvv1.LabelScheduled] != "true" || b.Spec.KVStoreName != kv.Name {
				return fmt.Errorf("backup %s: labels %v, spec %+v", b.Name, b.Labels, b.Spec)
			}
			if o := metav1.GetControllerOf(&b); o == nil || o.Kind != "KVStore" || o.Name != kv.Name {
				return fmt.Errorf("backup %s: owner %+v", b.Name, o)
			}
			n++
		}
		if n < 2 {
			return fmt.Errorf("%d scheduled backups", n)
		}
		return nil
	})
}
