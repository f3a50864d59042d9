package controller

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// TestObserveBackupMetrics: the gauges come from the KVStore object alone
// (an operator restart loses nothing), the schedule's only while it is
// active, and forgetBackupMetrics removes them all.
func TestObserveBackupMetrics(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)
	created := metav1.NewTime(now.Add(-48 * time.Hour))
	done := metav1.NewTime(now.Add(-time.Hour))
	cases := map[string]struct {
		backup      *kvv1.BackupSpec
		lastBackup  *kvv1.LastBackupStatus
		period      float64 // 0: no period nor start series
		lastSuccess float64 // 0: no series
	}{
		"no backup spec":   {},
		"on demand only":   {backup: &kvv1.BackupSpec{}, lastBackup: &kvv1.LastBackupStatus{Name: "b", CompletionTime: &done}, lastSuccess: float64(done.Unix())},
		"every 6 hours":    {backup: &kvv1.BackupSpec{Schedule: "0 */6 * * *"}, period: 6 * 3600},
		"weekdays":         {backup: &kvv1.BackupSpec{Schedule: "0 2 * * 1-5"}, lastBackup: &kvv1.LastBackupStatus{Name: "b", CompletionTime: &done}, period: 72 * 3600, lastSuccess: float64(done.Unix())},
		"suspended":        {backup: &kvv1.BackupSpec{Schedule: "@hourly", Suspend: true}, lastBackup: &kvv1.LastBackupStatus{Name: "b", CompletionTime: &done}, lastSuccess: float64(done.Unix())},
		"invalid schedule": {backup: &kvv1.BackupSpec{Schedule: "every day"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Namespace: "metrics-test", Name: name, CreationTimestamp: created}}
			kv.Spec.Backup, kv.Status.LastBackup = tc.backup, tc.lastBackup
			// A schedule seen before: a suspended or invalid one must
			// remove what it exported.
			backupSchedulePeriod.WithLabelValues(kv.Namespace, kv.Name).Set(1)
			backupScheduleStart.WithLabelValues(kv.Namespace, kv.Name).Set(1)
			t.Cleanup(func() { forgetBackupMetrics(kv.Namespace, kv.Name) })
			observeBackupMetrics(kv, now)

			if got := gaugeOrZero(t, kv, backupSchedulePeriod); got != tc.period {
				t.Errorf("period %v, want %v", got, tc.period)
			}
			wantStart := 0.0
			if tc.period != 0 {
				wantStart = float64(created.Unix())
			}
			if got := gaugeOrZero(t, kv, backupScheduleStart); got != wantStart {
				t.Errorf("start %v, want %v", got, wantStart)
			}
			if got := gaugeOrZero(t, kv, backupLastSuccess); got != tc.lastSuccess {
				t.Errorf("last success %v, want %v", got, tc.lastSuccess)
			}

			backupFailures.WithLabelValues(kv.Namespace, kv.Name).Inc()
			forgetBackupMetrics(kv.Namespace, kv.Name)
			for _, c := range []interface{ Delete(prometheus.Labels) bool }{backupSchedulePeriod, backupScheduleStart, backupLastSuccess, backupFailures} {
				if c.Delete(prometheus.Labels{"namespace": kv.Namespace, "kvstore": kv.Name}) {
					t.Errorf("a series survived forgetBackupMetrics")
				}
			}
		})
	}
}

// gaugeOrZero is the value of kv's series of the gauge vector c, 0 when
// it has none.
func gaugeOrZero(t *testing.T, kv *kvv1.KVStore, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	found := 0.0
	for m := range ch {
		pb := &dto.Metric{}
		if err := m.Write(pb); err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{}
		for _, l := range pb.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["namespace"] == kv.Namespace && labels["kvstore"] == kv.Name {
			found = pb.GetGauge().GetValue()
		}
	}
	return found
}
